// Renderers that turn planner results into SVG and HTML strings (no DOM needed).
export * from './svg.js';
export * from './gantt.js';
export * from './bars.js';
export * from './html-report.js';
