export { runtimeBench } from './main.js';
export { median, round } from './stats.js';
export { progress } from './log.js';
