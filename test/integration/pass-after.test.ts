import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, dbQuery, deploy, freePort, freshDatabase, inspect, removeContainers, startRollguard, waitFor,
  type FixtureImages, type HistoryRow, type Rollguard,
} from './harness.js';

// pass_after on a real Docker host with a PostgreSQL store: a good deploy becomes known-good
// once every rule held long enough, well before its window ends, recorded as passed_early.

const NAME = 'rg-passafter-web';
const SERVICE = 'passafter';

/** Readiness over HTTP and the restart count, sampled every second; a 60 s window, passed after 5 ok samples and 4 s. */
function policy(port: number): string {
  return `version: 1
defaults:
  window: 60s
  interval: 1s
  stop_timeout: 1s
  recovery_timeout: 20s
  pass_after: {ok: 5, min: 4s}
services:
  ${SERVICE}:
    match:
      container: ${NAME}
    signals:
      ready:
        http:
          url: http://127.0.0.1:${port}/cgi-bin/ready
          timeout: 1s
          json: {status: ready, checks.database.status: ok}
      restarts:
        container: restart_count
    rules:
      - {name: readiness failing, signal: ready, below: 1, for: 3, severity: P0, action: rollback}
      - {name: restarting, signal: restarts, above: 2, for: 1, severity: P1, action: notify}
`;
}

describe('pass_after on a real Docker host (PostgreSQL store)', { timeout: 180_000 }, () => {
  let images: FixtureImages;
  let port: number;
  let rg: Rollguard;
  let db: { url: string; drop(): Promise<void> };

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    port = await freePort();
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], port);
    rg = await startRollguard(policy(port), { databaseUrl: db.url });
    await waitFor('the running container adopted as known-good', async () => (await rg.status()).services[SERVICE]?.image === images.good);
  });

  after(async () => {
    await rg?.stop();
    await removeContainers(NAME);
    await db?.drop();
  });

  it('a good deploy passes early: known-good after 5 ok samples and 4 s, long before its 60 s window ends', async () => {
    await deploy(NAME, 'rollguard-fixture:v1.1', [], port);
    const d = await waitFor('the deployment to end', async (): Promise<HistoryRow | undefined> => {
      const newest = (await rg.history(SERVICE))[0];
      return newest && !['watching', 'rolling_back'].includes(newest.state) ? newest : undefined;
    }, 45_000);

    assert.equal(d.state, 'passed_early', `reason: ${d.reason}`);
    assert.equal(d.to_image, images.good2);
    assert.match(d.reason ?? '', /^passed early after \d+ ok samples in \S+ .*now known-good$/);
    const decidedAfter = Date.parse(d.decided_at ?? '') - Date.parse(d.started_at);
    assert.ok(decidedAfter >= 4_000, `not before min (decided ${decidedAfter} ms after the start)`);
    assert.ok(decidedAfter < 30_000, `long before the window's end (decided ${decidedAfter} ms after the start)`);
    assert.equal((await inspect(NAME))?.Image, images.good2, 'the deploy keeps running');
    const known = await waitFor('the known-good version recorded', async () => {
      const [row] = await dbQuery<{ image_id: string; deployment_id: string }>(db.url, 'SELECT image_id, deployment_id FROM known_good WHERE service = $1', [SERVICE]);
      return row?.image_id === images.good2 ? row : undefined;
    });
    assert.equal(Number(known.deployment_id), d.id, 'known-good from this deployment');

    const status = await rg.status();
    assert.equal(status.services[SERVICE]?.watch, null, 'the watch has ended');
    const table = await rg.cli('history', '--service', SERVICE);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /passed_early/, 'history shows it as passed_early');
    assert.match(await rg.logs(), /"early":true[^\n]*"msg":"deployment passed; now known-good"/);
  });
});
