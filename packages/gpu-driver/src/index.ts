// gpu-driver: the GPU actor (amdgpu/KFD, nouveau). Built by the gpu-driver issue.
export const PACKAGE = 'gpu-driver';
