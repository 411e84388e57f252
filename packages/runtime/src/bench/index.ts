export { runtimeBench } from './main.js';
export { median, medianOf, mediansInterleaved, round } from './stats.js';
export { progress } from './log.js';
export { metered, planDriver, type Meter, type Plan, type PlanCall, type PlanReply, type PlanStep } from './plan-driver.js';
