import type { RuleContext, RuleTagSpec } from '../definition-set.js';
import type { TagValue } from '../ports.js';
import type { BinaryReader, BinaryWriter } from '../binary.js';

/** Per-partition state of one rule tag: its current value per entity. */
export class RuleOperator {
  readonly defaultValue: TagValue | undefined = undefined;
  /** Evaluations that threw. */
  errors = 0;
  /** Message of the latest evaluation error. */
  lastError: string | undefined;
  private values: TagValue[] = [];
  private at: Float64Array<ArrayBuffer>;

  constructor(readonly spec: RuleTagSpec, capacity: number) {
    this.at = new Float64Array(capacity).fill(NaN);
  }

  has(slot: number): boolean {
    return this.at[slot] === this.at[slot];
  }

  value(slot: number): TagValue | undefined {
    return this.has(slot) ? this.values[slot] : undefined;
  }

  updatedAt(slot: number): number {
    return this.at[slot]!;
  }

  /**
   * Evaluates the condition for one entity. Returns true when the value changed.
   * A runtime error is counted and makes the value absent.
   */
  evaluate(slot: number, context: RuleContext, time: number): boolean {
    let next: TagValue | undefined;
    try {
      next = this.spec.evaluate(context);
    } catch (err: unknown) {
      this.errors++;
      this.lastError = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
      next = undefined;
    }
    const had = this.has(slot);
    if (next === undefined || next === null) {
      if (!had) return false;
      this.clear(slot);
      return true;
    }
    if (had && this.values[slot] === next) return false;
    this.values[slot] = next;
    this.at[slot] = time;
    return true;
  }

  clear(slot: number): void {
    this.at[slot] = NaN;
    this.values[slot] = null;
  }

  write(slot: number, w: BinaryWriter): void {
    w.f64(this.at[slot]!);
    w.value(this.values[slot] ?? null);
  }

  read(slot: number, r: BinaryReader): void {
    this.at[slot] = r.f64();
    this.values[slot] = r.value();
  }

  grow(capacity: number): void {
    if (this.at.length >= capacity) return;
    const next = new Float64Array(capacity).fill(NaN);
    next.set(this.at);
    this.at = next;
  }
}
