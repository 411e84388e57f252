export { runDemo } from './demo.js';
