/**
 * A direct translation of the common subset of CEL (field and index access,
 * literals, comparisons, `&&`, `||`, `!`, `?:`, `in`, `has()`, `size()`,
 * arithmetic on doubles) into JS closures, evaluated without the
 * interpreter's overload dispatch. Everything else keeps the interpreter.
 *
 * A fast closure only ever returns the value the interpreter would return.
 * Whenever it meets anything it does not handle exactly (a value of another
 * type, a missing key, an integer overflow, a division by zero, any runtime
 * error) it throws {@link Unhandled}, and the caller evaluates the same
 * expression with the interpreter, which gives the answer or the error
 * message CEL defines. Errors are the rare path; the common path pays for a
 * few `typeof` checks instead of a tree walk.
 */

// The AST of @marcbachmann/cel-js: `{ op, args }`.
interface AstNode {
  op: string;
  args: unknown;
}

/** Thrown by a fast closure for a case it leaves to the interpreter. */
export class Unhandled extends Error {}
const UNHANDLED = new Unhandled('left to the CEL interpreter');

type Fn = (ctx: Record<string, unknown>) => unknown;

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

/** A plain map value as CEL sees a JS object: constructor Object, or none. */
function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const c = (v as { constructor?: unknown }).constructor;
  return c === Object || c === undefined;
}

/** A value CEL accepts as is from a map or a list (anything else is left to the interpreter, which may reject it). */
function checked(v: unknown): unknown {
  switch (typeof v) {
    case 'number':
    case 'bigint':
    case 'string':
    case 'boolean':
      return v;
    case 'object':
      if (v === null || Array.isArray(v) || isMap(v)) return v;
  }
  throw UNHANDLED;
}

const hasOwn = Object.hasOwn;

function field(target: unknown, name: string): unknown {
  if (!isMap(target) || !hasOwn(target, name)) throw UNHANDLED;
  const v = target[name];
  if (v === undefined) throw UNHANDLED;
  return checked(v);
}

/** CEL equality as the interpreter applies it to these values: numbers compare across int and double, other types differ. */
function equal(a: unknown, b: unknown): boolean {
  const ta = typeof a;
  const tb = typeof b;
  if (ta === tb) {
    if (ta === 'object' && a !== null && b !== null) throw UNHANDLED; // lists and maps: element-wise, left to the interpreter
    return a === b;
  }
  if (ta === 'number' && tb === 'bigint') return (a as number) === safeNumber(b as bigint);
  if (ta === 'bigint' && tb === 'number') return (b as number) === safeNumber(a as bigint);
  if ((ta === 'object' && a !== null) || (tb === 'object' && b !== null)) throw UNHANDLED;
  return false;
}

/** An int as a double when the conversion is exact; otherwise the interpreter decides. */
function safeNumber(v: bigint): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw UNHANDLED;
  return n;
}

const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 63n - 1n;

/** An int result inside CEL's 64-bit range; an overflow is the interpreter's error to raise. */
function int64(v: bigint): bigint {
  if (v < INT_MIN || v > INT_MAX) throw UNHANDLED;
  return v;
}

/** Both numbers (double or int): relational comparison across the two, as CEL orders them. */
function relational(op: string, a: unknown, b: unknown): boolean {
  const ta = typeof a;
  const tb = typeof b;
  let x: number | bigint;
  let y: number | bigint;
  if (ta === 'number' && tb === 'number') {
    x = a as number;
    y = b as number;
  } else if (ta === 'bigint' && tb === 'bigint') {
    x = a as bigint;
    y = b as bigint;
  } else if (ta === 'number' && tb === 'bigint') {
    x = a as number;
    y = safeNumber(b as bigint);
  } else if (ta === 'bigint' && tb === 'number') {
    x = safeNumber(a as bigint);
    y = b as number;
  } else {
    throw UNHANDLED;
  }
  switch (op) {
    case '<': return x < y;
    case '<=': return x <= y;
    case '>': return x > y;
    default: return x >= y;
  }
}

/** Doubles, or a double with an int (the environment's mixed overloads); int with int is left to the interpreter (overflow). */
function toDouble(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return safeNumber(v);
  throw UNHANDLED;
}

function arithmetic(op: string, a: unknown, b: unknown): unknown {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    switch (op) {
      case '+': return int64(a + b);
      case '-': return int64(a - b);
      case '*': return int64(a * b);
      default:
        if (b === 0n || (a === INT_MIN && b === -1n)) throw UNHANDLED;
        return a / b;
    }
  }
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  const x = toDouble(a);
  const y = toDouble(b);
  switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    default:
      if (y === 0) throw UNHANDLED;
      return x / y;
  }
}

function bool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw UNHANDLED;
  return v;
}

/**
 * Translates a node into a closure that returns what the interpreter would or
 * throws {@link Unhandled}; undefined when the subset does not cover the node.
 */
export function fastClosure(node: unknown): Fn | undefined {
  return translate(node);
}

/** A value the subset takes as a literal: null, a number (int or double), a string or a boolean. */
function isLiteral(v: unknown): v is null | number | bigint | string | boolean {
  return v === null || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean';
}

/** The values of a list written as literals (`["a", "b"]`), built once; undefined for any other node. */
function literalList(node: unknown): unknown[] | undefined {
  if (!isNode(node) || node.op !== 'list' || !Array.isArray(node.args)) return undefined;
  const values: unknown[] = [];
  for (const item of node.args) {
    if (!isNode(item) || item.op !== 'value') return undefined;
    if (!isLiteral(item.args)) return undefined;
    values.push(item.args);
  }
  return values;
}

function translate(node: unknown): Fn | undefined {
  if (!isNode(node)) return undefined;
  const args = node.args;
  const pair = (): [Fn, Fn] | undefined => {
    if (!Array.isArray(args) || args.length !== 2) return undefined;
    const a = translate(args[0]);
    const b = translate(args[1]);
    return a === undefined || b === undefined ? undefined : [a, b];
  };
  switch (node.op) {
    case 'value': {
      const v = args;
      if (isLiteral(v)) return () => v;
      return undefined;
    }
    case 'id': {
      if (typeof args !== 'string') return undefined;
      const name = args;
      return (ctx) => {
        const v = ctx[name];
        if (v === undefined) throw UNHANDLED;
        return checked(v);
      };
    }
    case '.': {
      if (!Array.isArray(args) || typeof args[1] !== 'string') return undefined;
      const target = translate(args[0]);
      if (target === undefined) return undefined;
      const name = args[1];
      return (ctx) => field(target(ctx), name);
    }
    case '[]': {
      const p = pair();
      if (p === undefined) return undefined;
      const [target, index] = p;
      return (ctx) => {
        const t = target(ctx);
        const i = index(ctx);
        if (Array.isArray(t)) {
          const n = typeof i === 'bigint' ? Number(i) : NaN;
          if (!(n >= 0 && n < t.length)) throw UNHANDLED;
          return checked(t[n]);
        }
        if (typeof i !== 'string') throw UNHANDLED;
        return field(t, i);
      };
    }
    case '==':
    case '!=': {
      const p = pair();
      if (p === undefined) return undefined;
      const [a, b] = p;
      return node.op === '==' ? (ctx) => equal(a(ctx), b(ctx)) : (ctx) => !equal(a(ctx), b(ctx));
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const p = pair();
      if (p === undefined) return undefined;
      const [a, b] = p;
      const op = node.op;
      return (ctx) => relational(op, a(ctx), b(ctx));
    }
    case '+':
    case '-':
    case '*':
    case '/': {
      const p = pair();
      if (p === undefined) return undefined;
      const [a, b] = p;
      const op = node.op;
      return (ctx) => arithmetic(op, a(ctx), b(ctx));
    }
    case '&&': {
      // false && anything is false, whatever the other side (even an error): a left side
      // that is not false (true, an error, another type) hands the rest to the interpreter
      // unless it is true and the right side is a bool.
      const p = pair();
      if (p === undefined) return undefined;
      const [a, b] = p;
      return (ctx) => (bool(a(ctx)) ? bool(b(ctx)) : false);
    }
    case '||': {
      const p = pair();
      if (p === undefined) return undefined;
      const [a, b] = p;
      return (ctx) => (bool(a(ctx)) ? true : bool(b(ctx)));
    }
    case '!_': {
      const a = translate(args);
      return a === undefined ? undefined : (ctx) => !bool(a(ctx));
    }
    case '-_': {
      const a = translate(args);
      if (a === undefined) return undefined;
      if (isNode(args) && args.op === 'value' && (typeof args.args === 'number' || (typeof args.args === 'bigint' && args.args !== INT_MIN))) {
        const v = -(args.args as number);
        return () => v;
      }
      return (ctx) => {
        const v = a(ctx);
        if (typeof v === 'number') return -v;
        if (typeof v === 'bigint') return int64(-v);
        throw UNHANDLED;
      };
    }
    case '?:': {
      if (!Array.isArray(args) || args.length !== 3) return undefined;
      const [c, t, f] = args.map(translate);
      if (c === undefined || t === undefined || f === undefined) return undefined;
      return (ctx) => (bool(c(ctx)) ? t(ctx) : f(ctx));
    }
    case 'in': {
      const p = pair();
      if (p === undefined) return undefined;
      const [a, b] = p;
      const constant = literalList((args as unknown[])[1]);
      if (constant !== undefined) {
        return (ctx) => {
          const x = a(ctx);
          for (let i = 0; i < constant.length; i++) if (equal(x, checked(constant[i]))) return true;
          return false;
        };
      }
      return (ctx) => {
        const x = a(ctx);
        const list = b(ctx);
        if (Array.isArray(list)) {
          for (let i = 0; i < list.length; i++) if (equal(x, checked(list[i]))) return true;
          return false;
        }
        if (isMap(list) && typeof x === 'string') return hasOwn(list, x) && list[x] !== undefined;
        throw UNHANDLED;
      };
    }
    case 'list': {
      if (!Array.isArray(args)) return undefined;
      const items = args.map(translate);
      if (items.some((i) => i === undefined)) return undefined;
      const fns = items as Fn[];
      return (ctx) => fns.map((f) => f(ctx));
    }
    case 'call': {
      // has(x.f): the macro tests a map for a key without reading it.
      if (!Array.isArray(args) || args[0] !== 'has' || !Array.isArray(args[1]) || args[1].length !== 1) return undefined;
      const arg = args[1][0];
      if (!isNode(arg) || arg.op !== '.' || !Array.isArray(arg.args) || typeof arg.args[1] !== 'string') return undefined;
      const target = translate(arg.args[0]);
      if (target === undefined) return undefined;
      const name = arg.args[1];
      return (ctx) => {
        const t = target(ctx);
        if (!isMap(t)) throw UNHANDLED;
        return hasOwn(t, name) && t[name] !== undefined;
      };
    }
    case 'rcall': {
      // x.size() of a list or a map (string sizes count code points: left to the interpreter).
      if (!Array.isArray(args) || args[0] !== 'size' || !Array.isArray(args[2]) || args[2].length !== 0) return undefined;
      const target = translate(args[1]);
      if (target === undefined) return undefined;
      return (ctx) => {
        const t = target(ctx);
        if (Array.isArray(t)) return BigInt(t.length);
        if (isMap(t)) {
          let n = 0;
          for (const k in t) {
            checked(t[k]);
            n++;
          }
          return BigInt(n);
        }
        throw UNHANDLED;
      };
    }
    default:
      return undefined;
  }
}

/**
 * An evaluator for a parsed expression: its fast closure with the
 * interpreter behind it, or the interpreter alone when the expression leaves
 * the subset.
 */
export function fastEvaluator(ast: unknown, interpret: (context: Record<string, unknown>) => unknown): { evaluate: (context: object) => unknown; fast: boolean } {
  const fn = translate(ast);
  if (fn === undefined) return { evaluate: (context) => interpret(context as Record<string, unknown>), fast: false };
  return {
    fast: true,
    evaluate: (context) => {
      try {
        return fn(context as Record<string, unknown>);
      } catch {
        return interpret(context as Record<string, unknown>);
      }
    },
  };
}
