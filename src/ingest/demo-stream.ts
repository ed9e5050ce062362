import type { Clock, Event } from '../engine/index.js';
import { PortraitError } from '../errors/index.js';
import { EventGenerator, type GeneratorOptions } from './generator.js';
import type { Ingestor } from './ingestor.js';

/** Options of {@link DemoStream}. */
export interface DemoStreamOptions {
  /** Events per second of wall-clock time. */
  eventsPerSecond: number;
  users: number;
  seed: number;
  /** How often a batch is appended, ms. @defaultValue 100 */
  tickMs?: number;
  /** Further generator settings (out-of-order share, fraud share…). */
  generator?: Partial<GeneratorOptions>;
}

/**
 * A live synthetic source: draws events from the seeded {@link EventGenerator}
 * with event time following the wall clock, and appends them through the
 * ingestor in small batches. It stops producing while the engine is
 * overloaded rather than piling events up in memory.
 */
export class DemoStream {
  private readonly generator: EventGenerator;
  private timer: NodeJS.Timeout | undefined;
  private pending: Event | undefined;
  private busy = false;
  /** Events appended so far. */
  produced = 0;

  constructor(private readonly ingestor: Ingestor, private readonly clock: Clock, private readonly options: DemoStreamOptions) {
    this.generator = new EventGenerator({
      ...options.generator,
      seed: options.seed,
      users: options.users,
      devices: Math.max(1, Math.round(options.users * 0.8)),
      eventsPerSecond: options.eventsPerSecond,
      startTime: clock.now(),
      warmUpMs: 0,
    });
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick(), this.options.tickMs ?? 100);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Appends every generated event whose time has come. */
  async tick(): Promise<void> {
    if (this.busy || this.ingestor.isOverloaded()) return;
    this.busy = true;
    try {
      const now = this.clock.now();
      const batch: Event[] = [];
      const cap = Math.max(1, this.options.eventsPerSecond); // at most one second's worth per tick
      let next = this.pending ?? this.generator.next();
      while (next.time <= now && batch.length < cap) {
        batch.push(next);
        next = this.generator.next();
      }
      this.pending = next;
      if (batch.length > 0) {
        await this.ingestor.appendEvents(batch);
        this.produced += batch.length;
      }
    } catch (err: unknown) {
      // A full disk or closed log stops the demo, not the server.
      if (!(err instanceof PortraitError)) throw err;
      this.stop();
    } finally {
      this.busy = false;
    }
  }
}
