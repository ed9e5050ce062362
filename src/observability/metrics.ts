import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DecisionOutputStats } from '../decisions/index.js';
import type { CheckpointInfo, EngineStats, RuleCounters } from '../engine/index.js';
import type { IngestCounters } from '../ingest/index.js';

/** What the metrics read at scrape time. */
export interface MetricSources {
  engineStats(): EngineStats;
  ingestCounters(): IngestCounters;
  deadLetterCount(): number;
  profileCount(): number;
  /** Definitions online in the store whose stored documents do not compile (so they do not run). */
  invalidDefinitions(): ReadonlyArray<{ kind: 'tag' | 'rule' }>;
  /** Delivery counters of every decision output (the NDJSON file, the webhook), since start. */
  decisionOutputs(): ReadonlyArray<DecisionOutputStats>;
  /** Wall clock, epoch ms. */
  now(): number;
}

/** The Prometheus registry and the instruments other code records into. */
export interface Metrics {
  readonly registry: Registry;
  /** HTTP request latency by method, route and status. */
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Where a `POST /v1/decide` call waited: `append` (until its event was durable) and `engine` (until the engine had processed it). */
  readonly decideWait: Histogram<'phase'>;
  /** Records one checkpoint. */
  recordCheckpoint(info: CheckpointInfo): void;
  /** Records one group write of the event log: its time (until durable when the log syncs) and bytes. */
  recordLogWrite(seconds: number, bytes: number): void;
}

/** Bucket bounds of the latency histograms (requests, log writes, decide waits), seconds. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

let processMetrics: Registry | undefined;

/**
 * Node.js process metrics (`portrait_process_*`), collected once per process
 * and shared by every system's registry. prom-client's collectors cannot be
 * stopped (the GC histogram's observer stays registered), so made per system
 * they kept every closed system, engine and state included, reachable.
 */
function processRegistry(): Registry {
  if (processMetrics === undefined) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: 'portrait_process_' });
  }
  return processMetrics;
}

/**
 * Creates the metrics. Counters of the hot paths are plain numbers kept by
 * the engine and ingest; they are read here only when Prometheus scrapes, so
 * recording costs nothing per event.
 */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();

  new Counter({
    name: 'portrait_ingest_events_total',
    help: 'Events durably appended to the log.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.ingestCounters().accepted);
    },
  });
  new Counter({
    name: 'portrait_ingest_rejected_total',
    help: 'Inputs refused at ingest, by error code.',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of Object.entries(sources.ingestCounters().rejected)) this.inc({ code }, n);
    },
  });
  new Counter({
    name: 'portrait_ingest_overloaded_total',
    help: 'Ingest requests refused because the engine lagged too far behind.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(sources.ingestCounters().overloaded);
    },
  });
  new Gauge({
    name: 'portrait_dead_letters',
    help: 'Dead letters kept.',
    registers: [registry],
    collect() {
      this.set(sources.deadLetterCount());
    },
  });
  new Gauge({
    name: 'portrait_profiles',
    help: 'Profiles stored.',
    registers: [registry],
    collect() {
      this.set(sources.profileCount());
    },
  });

  const perPartition = (name: string, help: string, read: (p: EngineStats['partitions'][number]) => number, kind: 'counter' | 'gauge'): void => {
    const Type = kind === 'counter' ? Counter : Gauge;
    new Type({
      name,
      help,
      labelNames: ['partition'],
      registers: [registry],
      collect(this: Counter<'partition'> | Gauge<'partition'>) {
        this.reset();
        for (const p of sources.engineStats().partitions) {
          const value = read(p);
          if (!Number.isFinite(value)) continue;
          if (this instanceof Counter) this.inc({ partition: String(p.partition) }, value);
          else this.set({ partition: String(p.partition) }, value);
        }
      },
    });
  };
  perPartition('portrait_engine_events_total', 'Events processed by the engine.', (p) => p.events, 'counter');
  perPartition('portrait_engine_late_events_total', 'Events behind the watermark (applied or not).', (p) => p.late, 'counter');
  perPartition('portrait_engine_late_dropped_total', 'Late events beyond the allowed lateness that were dropped.', (p) => p.lateDropped, 'counter');
  perPartition('portrait_engine_tag_changes_total', 'Tag value changes.', (p) => p.tagChanges, 'counter');
  perPartition('portrait_engine_timers_fired_total', 'Timers fired.', (p) => p.timersFired, 'counter');
  perPartition('portrait_engine_lag_records', 'Records in the log not yet processed.', (p) => p.lag, 'gauge');
  perPartition('portrait_engine_entities', 'Entities with state.', (p) => p.entities, 'gauge');
  perPartition('portrait_engine_watermark_ms', 'Event-time watermark, epoch ms.', (p) => p.watermark, 'gauge');
  perPartition('portrait_engine_watermark_delay_seconds', 'Wall clock minus watermark, seconds.', (p) => (sources.now() - p.watermark) / 1000, 'gauge');
  perPartition('portrait_engine_stream_time_ms', 'Highest event time seen, epoch ms.', (p) => p.streamTime, 'gauge');

  /**
   * Series with one label, one per item `items()` lists at scrape time (reset
   * first, so an item that is gone leaves its series too).
   */
  const labelled =
    <T>(label: string, items: () => Iterable<T>, labelOf: (item: T) => string) =>
    (name: string, help: string, read: (item: T) => number, kind: 'counter' | 'gauge'): void => {
      const Type = kind === 'counter' ? Counter : Gauge;
      new Type({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect(this: Counter<string> | Gauge<string>) {
          this.reset();
          for (const item of items()) {
            if (this instanceof Counter) this.inc({ [label]: labelOf(item) }, read(item));
            else this.set({ [label]: labelOf(item) }, read(item));
          }
        },
      });
    };

  // One series per online rule (operators define rules, so the label stays small); a rule that
  // stops or is deleted leaves the engine's counters and, at the next scrape, these series.
  const perRule = labelled('rule', () => sources.engineStats().rules, (r: RuleCounters) => r.id);
  perRule('portrait_rule_decisions_total', 'Decisions of an online rule.', (r) => r.decisions, 'counter');
  perRule('portrait_rule_errors_total', 'Expressions of an online rule that failed at run time (counted as false; the rule shows as degraded).', (r) => r.errors, 'counter');
  perRule('portrait_rule_partial_matches_dropped_total', 'Partial matches of an online rule dropped at limits.maxPartialMatches.', (r) => r.droppedPartialMatches, 'counter');
  perRule('portrait_rule_partial_matches_expired_total', 'Partial matches of an online rule dropped because their key had no event for the state TTL.', (r) => r.expiredPartialMatches, 'counter');
  perRule('portrait_rule_keys', "Keys holding state in an online rule's key space.", (r) => r.keys, 'gauge');

  new Gauge({
    name: 'portrait_definitions_invalid',
    help: 'Definitions online in the store whose stored document does not compile, so they do not run.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const invalid = sources.invalidDefinitions();
      for (const kind of ['tag', 'rule'] as const) this.set({ kind }, invalid.filter((d) => d.kind === kind).length);
    },
  });

  // One series per configured output, labelled by its name; a failing sink shows as a rising failed count.
  const perOutput = labelled('output', () => sources.decisionOutputs(), (o: DecisionOutputStats) => o.name);
  perOutput('portrait_decision_output_delivered_total', 'Decisions a decision output delivered.', (o) => o.delivered, 'counter');
  perOutput('portrait_decision_output_failed_total', 'Decisions a decision output failed to deliver (after its retries).', (o) => o.failed, 'counter');
  perOutput('portrait_decision_output_dropped_total', 'Decisions a decision output dropped because its queue was full.', (o) => o.dropped, 'counter');
  perOutput('portrait_decision_output_queued', "Decisions waiting in a decision output's queue.", (o) => o.queued, 'gauge');

  new Counter({
    name: 'portrait_tag_errors_total',
    help: 'Tag evaluation problems: filter errors, field type mismatches, rule-tag errors.',
    labelNames: ['tag', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const e of sources.engineStats().tagErrors) {
        if (e.filterErrors > 0) this.inc({ tag: e.id, kind: 'filter' }, e.filterErrors);
        if (e.typeMismatches > 0) this.inc({ tag: e.id, kind: 'type' }, e.typeMismatches);
        if (e.ruleErrors > 0) this.inc({ tag: e.id, kind: 'rule' }, e.ruleErrors);
      }
    },
  });

  const checkpointDuration = new Histogram({
    name: 'portrait_checkpoint_duration_seconds',
    help: 'Time from checkpoint start to durable commit.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const checkpointEntities = new Counter({ name: 'portrait_checkpoint_entities_total', help: 'Entity snapshots written by checkpoints.', registers: [registry] });
  const checkpointBytes = new Counter({ name: 'portrait_checkpoint_bytes_total', help: 'Bytes written by checkpoints.', registers: [registry] });
  const logWriteDuration = new Histogram({
    name: 'portrait_log_write_duration_seconds',
    help: 'Event log group writes: time from handing a write to the file system until it returned (durable when the log syncs).',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const logWriteBytes = new Counter({ name: 'portrait_log_write_bytes_total', help: 'Bytes written to the event log.', registers: [registry] });
  const httpDuration = new Histogram({
    name: 'portrait_http_request_duration_seconds',
    help: 'HTTP request latency.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  const decideWait = new Histogram({
    name: 'portrait_decide_wait_seconds',
    help: 'POST /v1/decide calls by what they waited for: append (the event durable in the log), engine (the engine past it).',
    labelNames: ['phase'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });

  return {
    registry: Registry.merge([processRegistry(), registry]),
    httpDuration,
    decideWait,
    recordCheckpoint(info) {
      checkpointDuration.observe(info.durationMs / 1000);
      checkpointEntities.inc(info.entitiesWritten);
      checkpointBytes.inc(info.bytes);
    },
    recordLogWrite(seconds, bytes) {
      logWriteDuration.observe(seconds);
      logWriteBytes.inc(bytes);
    },
  };
}
