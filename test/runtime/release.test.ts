import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { openEmbeddedSystem } from '../../src/runtime/embedded-system.js';
import { cleanup, testConfig } from '../helpers/system.js';

afterEach(cleanup);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

describe('closing a system', () => {
  it('releases it: nothing the process keeps (metrics collectors, timers, listeners) holds its engine', async () => {
    const config = await testConfig();
    const refs = await (async () => {
      const system = await openEmbeddedSystem(config);
      await system.definitions.createRule({ id: 'big', key: ['user_id'], ordering: 'arrival', trigger: { eventTypes: ['transfer'] }, condition: { expr: 'event.attrs.amount > 10' } });
      await system.definitions.setRuleStatus('big', 'online');
      await system.ingestor.appendEvents([{ type: 'transfer', time: Date.now(), key: 'u1', attrs: { amount: 50, to_account: 'a', device_id: 'd', channel: 'app' } }]);
      await system.engine.drain();
      // Every collector runs once, as a scrape would make them.
      expect(await system.metrics.registry.metrics()).toContain('portrait_process_');
      const held = { engine: new WeakRef(system.engine), system: new WeakRef(system) };
      await system.close();
      return held;
    })();
    for (let i = 0; i < 20 && (refs.engine.deref() !== undefined || refs.system.deref() !== undefined); i++) {
      await new Promise((r) => setTimeout(r, 50));
      gc();
    }
    expect(refs.system.deref()).toBeUndefined();
    expect(refs.engine.deref()).toBeUndefined();
  });
});
