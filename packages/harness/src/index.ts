export { runScenario } from './run/run-scenario.js';
