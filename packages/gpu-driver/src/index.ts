// @svmsim/gpu-driver: the GPU actor (amdgpu userptr BOs) and its ioctl protocol.
export * from './gpu-protocol.js';
export { createGpu, GPU_POLICIES, MULTIPASS_POLICIES, type GpuConfig, type GpuPolicyName } from './gpu-actor.js';
export { DEFAULT_GPU_COSTS, type GpuCosts, type GpuStats } from './policy.js';
