/** controller/upgrade/: the stored state's data format, checked and migrated at start. */
export { DATA_FORMAT, FORMAT_KEY, META_BUCKET, RECORD_VERSIONS, prepareDataFormat, type DataFormatReport, type PrepareOptions } from './data-format.js';
