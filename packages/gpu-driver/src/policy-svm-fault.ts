// Policy `svm-fault` (and `unsafe-svm`): see the README. Not implemented yet.
import type { GpuHost, Policy } from './policy.js';

export interface SvmFaultOptions {
  unsafe: boolean;
  maxBusyRetries: number;
}

export function createSvmFaultPolicy(_host: GpuHost, _opts: SvmFaultOptions): Policy {
  throw new Error('gpu policy svm-fault: not implemented yet');
}
