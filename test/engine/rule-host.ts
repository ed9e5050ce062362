import { compileRule } from '../../src/definitions/index.js';
import type { Decision, Event } from '../../src/engine/index.js';
import { RuleRuntime, type RuleHost } from '../../src/engine/internal/rule-runtime.js';
import { defaultCatalog } from '../../src/runtime/default-catalog.js';

export type TestRuleHost = RuleHost & { watermark: number; processingTime: number; currentOffset: number };

/** A rule runtime alone with `docs` online, on a host whose time the test moves; decisions are collected. */
export function ruleRuntime(docs: ReadonlyArray<object>): { rt: RuleRuntime; host: TestRuleHost; decisions: Decision[] } {
  const decisions: Decision[] = [];
  const host: TestRuleHost = {
    partition: 0,
    partitionCount: 1,
    watermark: -Infinity,
    processingTime: 1,
    currentOffset: 0,
    profileContext: () => ({ tags: {}, attrs: {} }),
    setRuleTag: () => undefined,
    emitDecision: (d: Decision) => void decisions.push(d),
  };
  const rt = new RuleRuntime(host);
  rt.apply(docs.map((doc) => compileRule(doc, 1, defaultCatalog)));
  return { rt, host, decisions };
}

/** Feeds events to the runtime (each at the next log offset), then moves the watermark and lets time pass. */
export function feed(r: { rt: RuleRuntime; host: TestRuleHost }, events: ReadonlyArray<Event>, watermark: number): void {
  for (const e of events) {
    r.host.currentOffset++;
    r.rt.onEvent(e);
  }
  r.host.watermark = watermark;
  r.rt.advance();
}
