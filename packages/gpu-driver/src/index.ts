// @svmsim/gpu-driver: the GPU actor (amdgpu userptr BOs) and its ioctl protocol.
export * from './gpu-protocol.js';
export { createGpu, GPU_POLICIES, GPU_REPORT_VARIANTS, MULTIPASS_POLICIES, type GpuConfig, type GpuPolicyName, type GpuReportVariant } from './gpu-actor.js';
export { DEFAULT_GPU_COSTS, type GpuCosts, type GpuStats } from './policy.js';
export { DEFAULT_GPU_COST_PROFILE, GPU_COST_KEYS, GPU_COST_PROFILES, GPU_COST_PROFILE_NAMES, gpuCostProfile, profileOverrides, splitCostOverrides, type CitedNs, type GpuCostKey, type GpuCostOverrides, type GpuCostProfile } from './cost-profiles.js';
