export { CepFamily, CepNfa, compileCepPattern, createCepSink, clearCepSink, forEachMember, isCepStateEmpty, maskAnd, maskEmpty } from './nfa.js';
export type { CepState, CepPartialMatch, CepMatch, CepTimeout, CepSink, CepStep } from './nfa.js';
export { CepPatternError, defaultCepPatternOptions, normalizePattern } from './pattern.js';
export type {
  CepCondition,
  CepContext,
  CepContiguity,
  CepStageKind,
  CepStage,
  CepSkipStrategy,
  CepPatternSpec,
  NormalizedPattern,
  NormalizedStage,
} from './pattern.js';
