export { compileExpression, toPlainValue, scopeVariables } from './expression.js';
export type { CompiledExpression, ExpressionScope } from './expression.js';
export type { ParametricForm } from './parametric.js';
