export { parseDuration, formatDuration, DURATION_PATTERN } from './duration.js';
export { tagDocumentSchema } from './tag-document.js';
export type { TagDocument, StatisticTagDocument, RuleTagDocument, WindowDocument, DefinitionStatus, Duration } from './tag-document.js';
export { validateTagDocument, schemaDetails, MAX_WINDOW_BUCKETS } from './validate-tag.js';
export { compileTag, DEFAULT_MAX_DISTINCT } from './compile-tag.js';
export type { CompiledTag } from './compile-tag.js';
export { DefinitionService } from './definition-service.js';
export type { TagView, RuleView, DefinitionExport, ImportResult, OnlineChangeListener, ServingTag, InvalidDefinition } from './definition-service.js';
export type {
  DefinitionStore,
  DefinitionKind,
  DefinitionWrite,
  RestoredVersion,
  StoredDefinition,
  StoredVersion,
  OnlineEntry,
  RevisionRecord,
} from './definition-store.js';
export { ruleDocumentSchema } from './rule-document.js';
export type {
  RuleDocument,
  ConditionDocument,
  AggregateConditionDocument,
  SequenceConditionDocument,
  ExpressionConditionDocument,
  PatternStageDocument,
  SkipStrategyDocument,
  StageContiguity,
  ComparisonOperator,
  RuleWindowDocument,
} from './rule-document.js';
export { validateRuleDocument } from './validate-rule.js';
export { compileRule, DEFAULT_MAX_PARTIAL_MATCHES } from './compile-rule.js';
