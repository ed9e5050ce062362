/**
 * The shape of an expression with its one tunable number taken out: rules an
 * operator writes many times over with another threshold (`amount >= 500`,
 * `amount >= 800`…) have the same shape and differ in that number alone, so
 * the engine can run them as one computation and tell their answers apart by
 * the number.
 */

// The AST of @marcbachmann/cel-js: `{ op, args }` plus source positions.
interface AstNode {
  op: string;
  args: unknown;
}

/** An expression's shape, and the number that varies between expressions of that shape. */
export interface ParametricForm {
  /**
   * Canonical text of the expression (independent of spacing) with the
   * parameter, if any, replaced by a placeholder naming its CEL type.
   */
  readonly template: string;
  /**
   * The number the answer varies with monotonically (for every event and
   * context, the answer is false then true, or true then false, as it grows),
   * or null when the expression has none or more than one candidate.
   */
  readonly parameter: { readonly value: number; readonly type: 'int' | 'double' } | null;
  /** Canonical text of the whole expression, the parameter included. */
  readonly exact: string;
}

/**
 * Operators through which a number's effect on a boolean answer stays
 * monotone: order comparisons, addition and subtraction (either side), unary
 * minus, and the logical operators. Equality, multiplication, division,
 * indexing, calls and macros are not.
 */
const MONOTONE = new Set(['<', '<=', '>', '>=', '+', '-', '-_', '&&', '||', '!_']);

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

function isNumberLiteral(node: AstNode): boolean {
  return node.op === 'value' && (typeof node.args === 'number' || typeof node.args === 'bigint');
}

/**
 * Number literals reached from the root through monotone operators only (a
 * bare number at the root is not one: it is no condition).
 */
function candidates(node: unknown, monotonePath: boolean, out: AstNode[]): void {
  if (!isNode(node)) return;
  if (isNumberLiteral(node)) {
    if (monotonePath) out.push(node);
    return;
  }
  const through = monotonePath && MONOTONE.has(node.op);
  const args = node.args;
  if (Array.isArray(args)) for (const a of args) candidates(a, through, out);
  else candidates(args, through, out);
}

function canonical(node: unknown, hole: AstNode | null): unknown {
  if (Array.isArray(node)) return node.map((n) => canonical(n, hole));
  if (!isNode(node)) return typeof node === 'bigint' ? { int: node.toString() } : node;
  if (node === hole) return { hole: typeof node.args === 'bigint' ? 'int' : 'double' };
  if (node.op === 'value' && typeof node.args === 'bigint') return { value: { int: node.args.toString() } };
  return { [node.op]: canonical(node.args, hole) };
}

/**
 * The parametric form of a parsed expression. The parameter is the one number
 * literal that only monotone operators connect to the answer, when there is
 * exactly one and it is exact as a JS number (an int beyond 2^53 is not).
 */
export function parametricForm(ast: unknown): ParametricForm {
  const found: AstNode[] = [];
  candidates(ast, true, found);
  let hole: AstNode | null = found.length === 1 && found[0] !== ast ? found[0]! : null;
  let value = 0;
  if (hole !== null) {
    const raw = hole.args as number | bigint;
    value = Number(raw);
    if (!Number.isFinite(value) || (typeof raw === 'bigint' && BigInt(value) !== raw) || (typeof raw === 'bigint' && !Number.isSafeInteger(value))) hole = null;
  }
  const exact = JSON.stringify(canonical(ast, null));
  return {
    template: hole === null ? exact : JSON.stringify(canonical(ast, hole)),
    exact,
    parameter: hole === null ? null : { value, type: typeof hole.args === 'bigint' ? 'int' : 'double' },
  };
}
