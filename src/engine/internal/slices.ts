/**
 * Visits the slots of `list[from..end)` whose flag is set, in order, until
 * `deadline` (performance.now() ms) has passed, looking at the clock every 32
 * slots; `visit` clears the flag. Returns where to resume, or `end` once every
 * slot was visited. The engine loop's background work (a checkpoint's owed
 * entities and keys, a round of profile writes) runs in such slices.
 */
export function visitFlagged(list: ReadonlyArray<number>, flags: Uint8Array, from: number, end: number, deadline: number, visit: (slot: number) => void): number {
  let i = from;
  while (i < end) {
    const slot = list[i++]!;
    if (flags[slot] !== 0) visit(slot);
    if ((i & 31) === 0 && i < end && performance.now() >= deadline) return i;
  }
  return end;
}
