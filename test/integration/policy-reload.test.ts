/**
 * Hot reload: rollguard re-reads its policy when the file changes on disk, with no signal sent.
 * Runs beside other Docker tests: only containers named `rg-reload*` and only fixture port 18086.
 */
import assert from 'node:assert/strict';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  buildFixtures, deploy, fixturePolicy, freshDatabase, removeContainers, startPrometheus, startRollguard, waitFor,
  type FixtureImages, type Prometheus, type Rollguard,
} from './harness.js';

const NAME = 'rg-reload';
const PORT = 18086;
const SERVICE = 'reload';
const ADDED_SERVICE = 'reload-b';
const ADDED_RULE = 'restart storm';

type LogEntry = Record<string, unknown>;

async function logEntries(rg: Rollguard): Promise<LogEntry[]> {
  return (await rg.logs()).split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try {
      return JSON.parse(l) as LogEntry;
    } catch {
      return {};
    }
  });
}

const withMsg = (msg: string) => (e: LogEntry): boolean => e.msg === msg;

async function waitForLog(rg: Rollguard, what: string, match: (e: LogEntry) => boolean, timeoutMs = 20_000): Promise<LogEntry> {
  return waitFor(`log: ${what}`, async () => (await logEntries(rg)).find(match), timeoutMs);
}

/** Saves the way many editors do: write a new file beside it, then rename it over the old one. */
async function saveByRename(file: string, text: string): Promise<void> {
  await writeFile(`${file}.rg-tmp`, text);
  await rename(`${file}.rg-tmp`, file);
}

describe('policy reload on file change', { timeout: 180_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let db: { url: string; drop(): Promise<void> };
  let rg: Rollguard | undefined;
  const policy = (url: string): string => fixturePolicy(url, { port: PORT, service: SERVICE, container: NAME });

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
    db = await freshDatabase();
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await removeContainers(NAME);
    await db?.drop();
  });

  it('refuses a broken file with its line, then applies a valid one and logs what changed, without a signal', async () => {
    const text = policy(prom.url);
    const daemon = await startRollguard(text, { databaseUrl: db.url });
    rg = daemon;
    await waitFor(`${SERVICE} adopted`, async () => (await daemon.status()).services[SERVICE]?.image === images.good);
    const policyFile = path.join(daemon.stateDir, 'policy.yaml');

    // Broken, written in place.
    const broken = text.replace('above: 0.05', 'above: lots');
    const brokenLine = broken.split('\n').findIndex((l) => l.includes('above: lots')) + 1;
    assert.ok(brokenLine > 0);
    await writeFile(policyFile, broken);
    const refused = await waitForLog(daemon, 'the refusal', withMsg('policy reload refused; the running policy is kept'));
    assert.equal(refused.trigger, 'file change');
    const problems = refused.problems as { file: string; line?: number; path: string; message: string }[] | undefined;
    assert.ok(
      problems?.some((p) => p.file === policyFile && p.line === brokenLine && p.path === `services.${SERVICE}.rules[0].above` && /number/.test(p.message)),
      `the refusal names ${policyFile}:${brokenLine}: ${JSON.stringify(refused)}`,
    );
    assert.equal(daemon.process.exitCode, null, 'the daemon is still running');
    assert.deepEqual(Object.keys((await daemon.status()).services), [SERVICE], 'the running policy is kept');

    // Valid, saved by rename: one more rule for the service, and a second service.
    const withRule = text.replace(
      '    recovery:\n',
      `      - name: ${ADDED_RULE}\n        signal: restarts\n        above: 5\n        for: 1\n        severity: P1\n        action: notify\n    recovery:\n`,
    );
    assert.notEqual(withRule, text, 'the fixture policy has the expected recovery block');
    const second = fixturePolicy(prom.url, { port: PORT, service: ADDED_SERVICE, container: `${NAME}-b` });
    const valid = withRule + second.slice(second.indexOf('services:\n') + 'services:\n'.length);
    await saveByRename(policyFile, valid);

    const applied = await waitForLog(daemon, 'the applied changes', withMsg('applying policy changes'));
    assert.equal(applied.trigger, 'file change');
    const changes = applied.changes as {
      services: { added: string[]; removed: string[]; edited: Record<string, { rules: { added: string[]; removed: string[]; edited: string[] }; settings: string[] }> };
      settings: string[];
    };
    assert.deepEqual(changes.services.added, [ADDED_SERVICE]);
    assert.deepEqual(changes.services.removed, []);
    assert.deepEqual(Object.keys(changes.services.edited), [SERVICE]);
    assert.deepEqual(changes.services.edited[SERVICE]?.rules.added, [ADDED_RULE]);
    assert.deepEqual(changes.services.edited[SERVICE]?.rules.edited, []);
    assert.deepEqual(changes.services.edited[SERVICE]?.settings, []);
    assert.equal(applied.summary, `added services: "${ADDED_SERVICE}"; edited "${SERVICE}" (rules added: "${ADDED_RULE}")`);
    const reloaded = await waitForLog(daemon, 'policy reloaded', withMsg('policy reloaded'));
    assert.deepEqual(reloaded.added, [ADDED_SERVICE]);

    const status = await daemon.status();
    assert.deepEqual(Object.keys(status.services).sort(), [SERVICE, ADDED_SERVICE]);
    assert.equal(status.services[SERVICE]?.image, images.good, 'the first service keeps its state across the reload');

    // Saving the same text again changes nothing and is not applied again.
    await writeFile(policyFile, valid);
    await waitForLog(daemon, 'the unchanged save', withMsg('policy file saved without changes'));
    const entries = await logEntries(daemon);
    assert.equal(entries.filter(withMsg('applying policy changes')).length, 1);
    assert.equal(entries.filter((e) => e.trigger === 'SIGHUP').length, 0, 'no reload came from a signal');

    assert.equal(await daemon.stop(), 0, 'stops cleanly with the watch open');
    rg = undefined;
  });
});
