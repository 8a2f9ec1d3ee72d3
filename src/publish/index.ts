export { DEMO_CONFIG, type DemoResult, runDemo, sampleTree } from './demo.js';
export { defaultDependencies } from './dependencies.js';
export {
  type DeregisterInput,
  type DeregisterResult,
  deregisterPublished,
  type RemovedImage,
} from './deregister.js';
export {
  buildOptionsOf,
  type PublishInput,
  type PublishOutput,
  publishFromConfig,
} from './from-config.js';
export { history, type LiveImage, liveImages, type RunHistory, runHistory } from './history.js';
export { factsFromReport, type ImageFacts, imageFacts } from './image-facts.js';
export { Journal, type JournalRecord, listRuns, type RunRequest, readJournal } from './journal.js';
export { type LocalCloud, startLocalCloud } from './local-cloud.js';
export { formatPlan, type Method, makePlan, type PlanNode } from './plan.js';
export {
  type PruneCandidate,
  type PruneInput,
  type PruneResult,
  prune,
} from './prune.js';
export {
  type MethodContext,
  type MethodRunner,
  type PlacementOutcome,
  type PlacementReport,
  type PublishDependencies,
  type PublishOptions,
  type PublishResult,
  type PublishSource,
  type PublishTarget,
  planFor,
  publish,
  unfinishedRuns,
} from './publish.js';
export { type BuildOptions, renderForPublish } from './render-cache.js';
export { loadRuns, type RunState, replay } from './run-state.js';
export { type StatePaths, statePaths } from './state-paths.js';
export { needsLocalCloud, resolveTargets, selectTargets } from './targets.js';
export { BLOCK_SIZE, type BlockSource, type Placement, type PublishEvent, TAG } from './types.js';
export {
  type PlacementVerification,
  type VerifyPublishedInput,
  type VerifyPublishedResult,
  verifyPublished,
} from './verify-published.js';
