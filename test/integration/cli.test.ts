import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, runCli, type CliResult } from './harness.js';
import { EXAMPLES } from '../../src/cli/examples.js';

// The command line's contract: --version, --help with examples on every command, and the exit
// codes the README documents (usage 2, unavailable 69, configuration 78; policy check keeps 1).

const cli = (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> => runCli(args, { env, timeoutMs: 60_000 });

describe('the rollguard command line', { timeout: 180_000 }, () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'rg-cli-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await cli([flag]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.trim(), version);
    }
  });

  it('every command\'s --help ends with examples, and every command listed has them', async () => {
    const root = await cli(['--help']);
    assert.equal(root.code, 0);
    const listed = [...root.stdout.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    assert.ok(listed.length >= 10, `commands listed: ${listed.join(', ')}`);
    for (const name of listed) assert.ok(EXAMPLES[name], `${name} has examples`);
    for (const name of Object.keys(EXAMPLES)) {
      const r = await cli([...name.split(' ').filter(Boolean), '--help']);
      assert.equal(r.code, 0, `${name} --help`);
      assert.match(r.stdout, /\nExamples:\n {2}\$ \S*.*rollguard /, `${name || 'rollguard'} --help shows examples`);
    }
  });

  it('a usage error exits 2 and says what is wrong', async () => {
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const missing = await cli(['run']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '--policy <file>' not specified/);
    const badLimit = await cli(['history', '--limit', 'lots', '--state-dir', dir]);
    assert.equal(badLimit.code, 2);
  });

  it('a bad policy: run exits 78 (configuration: systemd does not restart it), policy check exits 1 like promtool', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'version: 1\nservices:\n  web:\n    match: {container: web}\n    colour: red\n');
    const run = await cli(['run', '--policy', file, '--state-dir', path.join(dir, 'state'), '--listen', '127.0.0.1:0']);
    assert.equal(run.code, 78, run.stderr);
    assert.match(run.stderr, /bad\.yaml:5: services\.web\.colour/);
    const check = await cli(['policy', 'check', file]);
    assert.equal(check.code, 1);
    const asJson = await cli(['policy', 'check', file, '--json']);
    assert.equal(asJson.code, 1);
    const parsed = JSON.parse(asJson.stdout) as { ok: boolean; problems: { line?: number; path: string; message: string }[] };
    assert.equal(parsed.ok, false);
    assert.ok(parsed.problems.some((p) => p.line === 5 && p.path === 'services.web.colour'), JSON.stringify(parsed.problems));
    const noEngine = await cli(['run', '--policy', file, '--state-dir', path.join(dir, 'state')], { ...process.env, DOCKER_HOST: `unix://${path.join(dir, 'no-such.sock')}` });
    assert.equal(noEngine.code, 78, 'a bad policy is told before an engine that does not answer');
    const lease = await cli(['run', '--policy', file, '--state-dir', path.join(dir, 'state')], { ...process.env, ROLLGUARD_LEASE_TTL: 'soon' });
    assert.equal(lease.code, 78, 'a bad setting in the environment is configuration too');
  });

  it('without a running daemon, status and rollback exit 69 (unavailable) and say so', async () => {
    const status = await cli(['status', '--state-dir', dir]);
    assert.equal(status.code, 69);
    assert.match(status.stderr, /no rollguard daemon is running with state directory/);
    const rollback = await cli(['rollback', 'web', '--yes', '--state-dir', dir], { ...process.env, ROLLGUARD_API_TOKEN: 'rg-test-secret-x' });
    assert.equal(rollback.code, 69);
    assert.match(rollback.stderr, /no rollguard daemon is running/);
  });
});
