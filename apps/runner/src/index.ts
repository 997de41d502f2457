export { main, generalHelp } from './main.js';
export { parseCommandArgs, commandHelp, UsageError, type ParsedArgs, type CommandSpec } from './args.js';
export { COMMAND_SPECS } from './commands/specs.js';
export { findInstalledPlugins, loadedPlugins, loadPlugin, loadPlugins, type PluginLoad } from './discover.js';
export { listCommand } from './commands/list.js';
export { runJob, type JobSpec } from './pipeline/job.js';
export type { JobResult, CurvePoint } from './pipeline/results.js';
export { prepareDataset, datasetId, type Dataset, type DatasetChoice } from './pipeline/dataset.js';
export { zooRows, zooMarkdown, type ZooRow } from './commands/zoo.js';
