import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from './metrics.js';

describe('metrics', () => {
  it('rollguard_store_writes_waiting reads the write queue at each scrape', async () => {
    const m = createMetrics();
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_waiting 0$/m);
    let waiting = 3;
    m.writesWaiting.read = () => waiting;
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_waiting 3$/m);
    waiting = 0;
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_waiting 0$/m);
    m.storeWritesSetAside.inc();
    assert.match(await m.registry.metrics(), /^rollguard_store_writes_set_aside_total 1$/m);
  });
});
