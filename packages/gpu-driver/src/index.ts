// @svmsim/gpu-driver: the GPU actor (amdgpu userptr BOs) and its ioctl protocol.
export * from './gpu-protocol.js';
export { createGpu, GPU_POLICIES, GPU_REPORT_VARIANTS, type GpuConfig, type GpuPolicyName, type GpuReportVariant } from './gpu-actor.js';
export { DEFAULT_GPU_COSTS, type GpuCosts, type GpuStats } from './policy.js';
