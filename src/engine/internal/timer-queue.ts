/**
 * A min-heap of timers (time, entity slot, owner) kept in parallel arrays so a
 * million timers cost three numbers each and no objects. Duplicate and stale
 * entries are the caller's to filter when they fire (by comparing with the time
 * the caller recorded), which keeps registration O(log n) with no lookups.
 */
export class TimerQueue {
  private times: number[] = [];
  private slots: number[] = [];
  private owners: number[] = [];

  get size(): number {
    return this.times.length;
  }

  /** Time of the earliest timer, or Infinity when empty. */
  peekTime(): number {
    return this.times.length === 0 ? Infinity : this.times[0]!;
  }

  push(time: number, slot: number, owner: number): void {
    const times = this.times;
    const slots = this.slots;
    const owners = this.owners;
    let i = times.length;
    times.push(time);
    slots.push(slot);
    owners.push(owner);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent]!;
      if (pt <= time) break;
      times[i] = pt;
      slots[i] = slots[parent]!;
      owners[i] = owners[parent]!;
      i = parent;
    }
    times[i] = time;
    slots[i] = slot;
    owners[i] = owner;
  }

  /**
   * Removes the earliest timer if its time is at or before `upTo`; calls `fire`
   * with it and returns true, or returns false when none is due.
   */
  popDue(upTo: number, fire: (time: number, slot: number, owner: number) => void): boolean {
    const times = this.times;
    if (times.length === 0 || times[0]! > upTo) return false;
    const time = times[0]!;
    const slot = this.slots[0]!;
    const owner = this.owners[0]!;
    this.removeTop();
    fire(time, slot, owner);
    return true;
  }

  clear(): void {
    this.times = [];
    this.slots = [];
    this.owners = [];
  }

  private removeTop(): void {
    const times = this.times;
    const slots = this.slots;
    const owners = this.owners;
    const lastTime = times.pop()!;
    const lastSlot = slots.pop()!;
    const lastOwner = owners.pop()!;
    const n = times.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && times[r]! < times[l]! ? r : l;
      if (times[c]! >= lastTime) break;
      times[i] = times[c]!;
      slots[i] = slots[c]!;
      owners[i] = owners[c]!;
      i = c;
    }
    times[i] = lastTime;
    slots[i] = lastSlot;
    owners[i] = lastOwner;
  }
}
