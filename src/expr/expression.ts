import { Environment } from '@marcbachmann/cel-js';
import { DefinitionError } from '../errors/index.js';
import { fastEvaluator } from './fast.js';
import { parametricForm, type ParametricForm } from './parametric.js';

/**
 * Where an expression is used decides which variables it may read.
 * - `event`: filters over one event: `attrs` (map), `eventType`, `time` (epoch ms, double), `key`.
 * - `profile`: conditions over a profile: `tags` (map), `attrs` (map), `key`, `now` (epoch ms, double).
 * - `rule`: rule predicates: the triggering `event` (map: `type`, `time`, `attrs`), the profile's `tags` and `attrs`,
 *   the rule `key` (map of key field → value) and `now`.
 * - `pattern`: sequence stage conditions: the candidate `event` and `matched` (map of stage name → list of
 *   events taken so far by this partial match).
 */
export type ExpressionScope = 'event' | 'profile' | 'rule' | 'pattern';

/** The variables an expression of each scope reads. */
export const scopeVariables: Readonly<Record<ExpressionScope, Readonly<Record<string, string>>>> = {
  event: { attrs: 'map<string, dyn>', eventType: 'string', time: 'double', key: 'string' },
  profile: { tags: 'map<string, dyn>', attrs: 'map<string, dyn>', key: 'string', now: 'double' },
  rule: { event: 'map<string, dyn>', tags: 'map<string, dyn>', attrs: 'map<string, dyn>', key: 'map<string, dyn>', now: 'double' },
  pattern: { event: 'map<string, dyn>', matched: 'map<string, dyn>' },
};

/** A CEL expression compiled once, evaluated many times. */
export interface CompiledExpression {
  /** The source text. */
  readonly source: string;
  /** Type CEL infers for the result (`bool`, `double`, `dyn`…). */
  readonly resultType: string;
  /**
   * Fields read from each map variable, e.g. `{ tags: ['spend_30d'], attrs: ['age'] }`.
   * A variable read with a computed key is listed under `dynamic`.
   */
  readonly references: Readonly<Record<string, ReadonlyArray<string>>>;
  /** Map variables read with a computed key (so every field may be read). */
  readonly dynamic: ReadonlyArray<string>;
  /** Evaluates against a context holding the scope's variables. Throws on a runtime error. */
  evaluate(context: object): unknown;
  /** The expression's shape and the one number its answer varies with, if any. */
  readonly parametric: ParametricForm;
}

const environments = new Map<ExpressionScope, Environment>();

function environment(scope: ExpressionScope): Environment {
  let env = environments.get(scope);
  if (env === undefined) {
    env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false });
    for (const [name, type] of Object.entries(scopeVariables[scope])) env.registerVariable(name, type);
    // Event and profile numbers are doubles; CEL literals like `1` are ints. Let the two
    // mix in arithmetic the way an operator expects (`spend + 1`), giving a double.
    const mixed: Array<[string, (a: number, b: number) => number]> = [
      ['+', (a, b) => a + b],
      ['-', (a, b) => a - b],
      ['*', (a, b) => a * b],
      ['/', (a, b) => a / b],
    ];
    for (const [op, fn] of mixed) {
      env.registerOperator(`double ${op} int: double`, (a: number, b: bigint) => fn(a, Number(b)));
      env.registerOperator(`int ${op} double: double`, (a: bigint, b: number) => fn(Number(a), b));
    }
    environments.set(scope, env);
  }
  return env;
}

/**
 * The interpreter's program for an expression of a scope (parsed; `check()` type-checks it): its `ast`, and a call that evaluates it. For tests that hold
 * the fast path to the interpreter.
 */
export function interpreterProgram(source: string, scope: ExpressionScope): { ast: unknown; check(): unknown; (context: Record<string, unknown>): unknown } {
  return environment(scope).parse(source) as unknown as { ast: unknown; check(): unknown; (context: Record<string, unknown>): unknown };
}

/**
 * Compiles a CEL expression for a scope. Throws a {@link DefinitionError} with
 * code `PRT_DEF_EXPRESSION` naming `path` and the reason when the text does not
 * parse or does not type-check (e.g. it reads an unknown variable).
 *
 * @example compileExpression('attrs.amount > 100', 'event', '/filter')
 */
export function compileExpression(source: string, scope: ExpressionScope, path: string, subject?: string): CompiledExpression {
  const env = environment(scope);
  let program: ReturnType<Environment['parse']>;
  try {
    program = env.parse(source);
  } catch (err: unknown) {
    throw expressionError(source, path, subject, firstLine(err));
  }
  const checked = program.check() as { valid: boolean; type?: string; error?: unknown };
  if (!checked.valid) throw expressionError(source, path, subject, firstLine(checked.error));
  const references: Record<string, string[]> = {};
  const dynamic = new Set<string>();
  collectReferences(program.ast as AstNode, Object.keys(scopeVariables[scope]), references, dynamic);
  return Object.freeze({
    source,
    resultType: checked.type ?? 'dyn',
    references: Object.freeze(references),
    dynamic: Object.freeze([...dynamic]),
    evaluate: fastEvaluator(program.ast, (context) => program(context)).evaluate,
    parametric: Object.freeze(parametricForm(program.ast)),
  });
}

/** Converts a CEL result to a plain JS value (CEL ints are BigInts). */
export function toPlainValue(value: unknown): string | number | boolean | null {
  switch (typeof value) {
    case 'bigint': return Number(value);
    case 'number':
    case 'string':
    case 'boolean': return value;
    default: return value === null || value === undefined ? null : String(value);
  }
}

function expressionError(source: string, path: string, subject: string | undefined, reason: string): DefinitionError {
  const who = subject === undefined ? '' : `definition "${subject}" `;
  return new DefinitionError('PRT_DEF_EXPRESSION', `${who}${path} expression ${JSON.stringify(source)} is invalid: ${reason}`, {
    path,
    ...(subject === undefined ? {} : { subject }),
  });
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

// The AST of @marcbachmann/cel-js: `{ op, args }` where args is a node list, a string
// (identifier name, member name) or a literal value.
interface AstNode {
  op: string;
  args: unknown;
}

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

function collectReferences(node: unknown, variables: ReadonlyArray<string>, refs: Record<string, string[]>, dynamic: Set<string>): void {
  if (Array.isArray(node)) {
    for (const child of node) collectReferences(child, variables, refs, dynamic);
    return;
  }
  if (!isNode(node)) return;
  const args = node.args;
  if ((node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]') && Array.isArray(args)) {
    const target = args[0];
    if (isNode(target) && target.op === 'id' && typeof target.args === 'string' && variables.includes(target.args)) {
      const field = args[1];
      const name = typeof field === 'string' ? field : isNode(field) && field.op === 'value' && typeof field.args === 'string' ? field.args : undefined;
      if (name === undefined) dynamic.add(target.args);
      else (refs[target.args] ??= []).includes(name) || refs[target.args]!.push(name);
      if (name === undefined) collectReferences(field, variables, refs, dynamic);
      return;
    }
  }
  if (node.op === 'id' && typeof args === 'string') {
    // A bare map variable (e.g. passed to a function) may read any field.
    if (variables.includes(args) && scopeIsMap(args)) dynamic.add(args);
    return;
  }
  collectReferences(args, variables, refs, dynamic);
}

function scopeIsMap(name: string): boolean {
  return name === 'attrs' || name === 'tags' || name === 'event' || name === 'matched' || name === 'key';
}
