/**
 * The README's first steps, followed as written (demo → init → policy check → run), with the
 * built CLI in place of `npx rollguard` and a fresh directory as the working directory. Runs alone
 * (scripts/integration.ts): `init` and `run` see every container on the engine, and `run` listens
 * on the default 127.0.0.1:9817 as the README says.
 */
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { buildFixtures, CLI, deploy, removeContainers, ROOT, waitFor } from './harness.js';

const NAME = 'rg-tut-web';
const PORT = 18250;

/** The shell lines of the README's "The two commands" section, before the test suite's. */
async function tutorialLines(): Promise<string[]> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The two commands'), readme.indexOf('Run the whole test suite'));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n')).map((l) => l.trim()).filter(Boolean);
}

/** A README line as run here: `npm ci &&` is the checkout's own install (done), `npx rollguard` the built CLI. */
function asArgs(line: string): string[] {
  const cmd = line.replace(/^npm ci && /, '');
  assert.match(cmd, /^npx rollguard /, `a tutorial line this test knows how to run: ${line}`);
  return cmd.replace(/^npx rollguard /, '').split(/\s+/);
}

describe('the README tutorial, followed as written', { timeout: 600_000 }, () => {
  let cwd: string;

  before(async () => {
    cwd = await mkdtemp(path.join(os.tmpdir(), 'rg-tutorial-'));
    await buildFixtures();
    await removeContainers(NAME);
    await deploy(NAME, 'rollguard-fixture:v1', [], PORT);
  });

  after(async () => {
    await removeContainers(NAME);
    await rm(cwd, { recursive: true, force: true });
  });

  it('demo, then init, policy check and run on the services of this host', async () => {
    const lines = await tutorialLines();
    assert.deepEqual(lines.map((l) => asArgs(l)[0]), ['demo', 'init', 'policy', 'run'], `the tutorial's steps: ${lines.join(' | ')}`);
    const run = (args: string[]) => promisify(execFile)(process.execPath, [CLI, ...args], { cwd, timeout: 300_000 });

    const demo = await run(asArgs(lines[0]!));
    assert.match(demo.stdout, /recovery verified/i, 'the demo shows the loop to the end');

    await run(asArgs(lines[1]!));
    const policy = await readFile(path.join(cwd, 'rollguard.yaml'), 'utf8');
    assert.match(policy, new RegExp(`container: ${NAME}`), 'init found the running container');

    const check = await run(asArgs(lines[2]!));
    assert.match(check.stdout, /rollguard\.yaml: ok/);

    const daemon = spawn(process.execPath, [CLI, ...asArgs(lines[3]!)], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    daemon.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    daemon.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    try {
      await waitFor('the daemon on 127.0.0.1:9817', async () => (await fetch('http://127.0.0.1:9817/healthz').catch(() => undefined))?.ok || undefined, 120_000);
      const page = await (await fetch('http://127.0.0.1:9817/')).text();
      assert.match(page, new RegExp(NAME.replace(/-/g, '.')), 'the status page lists the service');
      assert.ok(existsSync(path.join(cwd, 'var')), 'state in ./var of the working directory');
    } finally {
      daemon.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => daemon.once('exit', (c) => r(c)));
      assert.equal(code, 0, `the daemon stops cleanly on SIGTERM; output: ${output.slice(-2_000)}`);
    }
  });
});
