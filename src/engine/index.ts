export { ControlType, isControl, setAttr } from './event.js';
export type { AttrValue, Event, LogRecord } from './event.js';
export type {
  RecordLog,
  LogEntry,
  CheckpointStore,
  PartitionCheckpointMeta,
  PartitionCheckpointChange,
  EntitySnapshot,
  EntitySnapshots,
  ProfileSink,
  EncodedProfile,
  Profile,
  ProfileTag,
  ProfileAttribute,
  TagValue,
  DeadLetter,
  DeadLetterSink,
  Decision,
  DecisionSink,
} from './ports.js';
export { ruleKeyOf, ruleKeyValues, splitRuleKey, KEY_SEPARATOR } from './rule-key.js';
export { attributesRead, emptyDefinitionSet } from './definition-set.js';
export type {
  AggregateFn,
  WindowSpec,
  StatisticTagSpec,
  RuleTagSpec,
  RuleContext,
  TagSpec,
  DefinitionSet,
  DefinitionSetResolver,
  RuleSpec,
  RuleAggregateSpec,
  RuleConditionShare,
  RuleSequenceShare,
  RuleSequenceSpec,
  RuleConditionNode,
  RulePredicateContext,
  Comparison,
} from './definition-set.js';
export type { CepContext, CepCondition, CepContiguity, CepPatternSpec, CepSkipStrategy, CepStage, CepStageKind } from './internal/cep/pattern.js';
export { encodeRecord, encodeRecordInto, beginRecord, beginAttrs, endRecord, decodeRecord, decodeRecordProjected, ALL_ATTRIBUTES, type AttributeProjection } from './record-codec.js';
export { partitionOf } from './partitioner.js';
export { Engine, defaultEngineOptions, systemClock } from './engine.js';
export type { EngineOptions, EngineDependencies, EngineStats, PartitionStats, CheckpointInfo, Clock } from './engine.js';
export type { RuleCounters } from './internal/rule-runtime.js';
export { ProfileEncoder, decodeProfile } from './profile-codec.js';
export { BinaryWriter, BinaryReader, shortAscii } from './binary.js';
export { crc32 } from './checksum.js';
export { SnapshotBatch } from './snapshot-batch.js';
