export { compileExpression, toPlainValue, scopeVariables } from './expression.js';
export type { CompiledExpression, ExpressionScope } from './expression.js';
