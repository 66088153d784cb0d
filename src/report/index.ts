/** Public API of the training report and the SVG/PNG charts it is drawn with. */
export { writeReport, readRunMetrics, reportCharts, reportHtml, type RunMetrics, type StepRecord, type EpochRecord } from './report';
export { chartSvg, confusionSvg, writePng, type ChartSpec, type Series, type Marker } from './svg';
