export { ControlType, isControl } from './event.js';
export type { AttrValue, Event, LogRecord } from './event.js';
export type {
  RecordLog,
  LogEntry,
  CheckpointStore,
  PartitionCheckpointMeta,
  PartitionCheckpointChange,
  EntitySnapshot,
  ProfileSink,
  Profile,
  ProfileTag,
  ProfileAttribute,
  TagValue,
  DeadLetter,
  DeadLetterSink,
} from './ports.js';
export { emptyDefinitionSet } from './definition-set.js';
export type {
  AggregateFn,
  WindowSpec,
  StatisticTagSpec,
  RuleTagSpec,
  RuleContext,
  TagSpec,
  DefinitionSet,
  DefinitionSetResolver,
} from './definition-set.js';
export { encodeRecord, decodeRecord } from './record-codec.js';
export { partitionOf } from './partitioner.js';
export { Engine, defaultEngineOptions, systemClock } from './engine.js';
export type { EngineOptions, EngineDependencies, EngineStats, PartitionStats, CheckpointInfo, Clock } from './engine.js';
