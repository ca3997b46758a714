/** controller/metrics/: the public surface of this folder. */
export { ControllerMetrics, controllerVersion, stopwatch, type MetricsSources } from './metrics.js';
