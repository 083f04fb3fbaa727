/**
 * The deployments people actually make, on the real engine: Compose one-off containers and
 * recreates with inherited volumes, image volumes under plain `docker run`, `--rm` services,
 * reconfigurations of the same image, crashing versions, versions that keep breaching without
 * reaching a rule's streak, and Swarm task containers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  buildFixtures, deploy, docker, fixturePolicy, inspect, readyStatus, removeContainers,
  startPrometheus, startRollguard, waitFor, type FixtureImages, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const run = promisify(execFile);
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];

/** Waits for the newest deployment after `afterId` to reach a final state. */
async function settled(rg: Rollguard, afterId: number, timeoutMs = 60_000): Promise<HistoryRow> {
  return waitFor('the deployment to settle', async () => {
    const newest = (await rg.history('web'))[0];
    return newest && newest.id > afterId && FINAL.includes(newest.state) ? newest : undefined;
  }, timeoutMs);
}

/** Env of a running container, as a map. */
async function envOf(name: string): Promise<Record<string, string>> {
  const env = JSON.parse(await docker('inspect', '-f', '{{json .Config.Env}}', name)) as string[];
  return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Builds `FROM <base>` + `VOLUME /data` as `tag`: a version with an image volume. */
async function withVolume(base: string, tag: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-vol-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), `FROM ${base}\nVOLUME /data\n`);
    await docker('build', '-q', '-t', tag, dir);
    return docker('image', 'inspect', '-f', '{{.Id}}', tag);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Only the Prometheus error-rate rule: what the service-level checks must catch without help. */
function prometheusOnly(policy: string): string {
  return policy.replace(/      - name: readiness failing\n(?:        .*\n)+/, '');
}

describe('services as people deploy them, on a real Docker host', { timeout: 600_000 }, () => {
  let images: FixtureImages;
  let prom: Prometheus;
  let rg: Rollguard | undefined;
  const composeDir = path.join(os.tmpdir(), `rg-compose-${process.pid}`);

  const compose = async (image: string, ...args: string[]): Promise<string> => {
    const { stdout } = await run('docker-compose', ['-p', 'rgcompose', '-f', path.join(composeDir, 'docker-compose.yml'), ...args], {
      env: { ...process.env, IMAGE: image }, maxBuffer: 4 * 1024 * 1024,
    });
    return stdout;
  };

  before(async () => {
    images = await buildFixtures();
    await withVolume('rollguard-fixture:v1', 'rollguard-fixture:v1-vol');
    await withVolume('rollguard-fixture:v2-errors', 'rollguard-fixture:v2-errors-vol');
    prom = await startPrometheus([{ port: 18080, service: 'web' }]);
  });

  after(async () => {
    await rg?.stop();
    await prom?.stop();
    await run('docker-compose', ['-p', 'rgcompose', '-f', path.join(composeDir, 'docker-compose.yml'), 'down', '-v'], { env: { ...process.env, IMAGE: 'x' } }).catch(() => undefined);
    await rm(composeDir, { recursive: true, force: true });
    await removeContainers('rg-svc');
  });

  /** A fresh rollguard for each case (embedded SQLite store), after the previous one is stopped. */
  async function restart(policy: string): Promise<Rollguard> {
    await rg?.stop();
    // A case that failed half-way must not leave a container holding the fixture's port.
    await run('docker-compose', ['-p', 'rgcompose', '-f', path.join(composeDir, 'docker-compose.yml'), 'down', '-v'], { env: { ...process.env, IMAGE: 'x' } }).catch(() => undefined);
    await removeContainers('rg-svc');
    await removeContainers('rgcompose');
    rg = await startRollguard(policy);
    return rg;
  }

  it('a Compose one-off of the new image (compose run, by its labels) is not a deployment; the bad docker-compose up -d that follows is reverted, its image volume kept', async () => {
    await mkdir(composeDir, { recursive: true });
    await writeFile(path.join(composeDir, 'docker-compose.yml'), [
      "version: '2.4'",
      'services:',
      '  web:',
      '    image: ${IMAGE}',
      '    network_mode: host',
      '    restart: unless-stopped',
      '    environment: {PORT: "18080"}',
      '',
    ].join('\n'));
    const policy = fixturePolicy(prom.url).replace('      container: rg-web', '      compose: {project: rgcompose, service: web}');
    const daemon = await restart(policy);
    await compose('rollguard-fixture:v1-vol', 'up', '-d');
    const first = await waitFor('the compose container', () => inspect('rgcompose_web_1'));
    await waitFor('the compose container adopted', async () => (await daemon.status()).services.web?.image === first.Image);
    await waitFor('the fixture serving', async () => (await readyStatus()) === 200);
    await docker('exec', 'rgcompose_web_1', 'sh', '-c', 'echo written-by-v1 > /data/file');
    await prom.waitForData();

    // A migration run with the new image before `up -d`, as pipelines do (`docker-compose run --rm
    // web migrate`). Debian's docker-compose 1.29 links a one-off to the service's running
    // containers, which Docker refuses under host networking, so the one-off is created with the
    // labels Compose gives it (project, service, oneoff=True): those are what rollguard reads.
    await docker('run', '-d', '--rm', '--name', 'rgcompose_web_run_1', '--network', 'host',
      '--label', 'com.docker.compose.project=rgcompose', '--label', 'com.docker.compose.service=web',
      '--label', 'com.docker.compose.oneoff=True', '--label', 'com.docker.compose.container-number=1',
      'rollguard-fixture:v2-errors-vol', 'sleep', '3');
    await waitFor('the one-off to finish', async () => !(await inspect('rgcompose_web_run_1')), 15_000);
    await new Promise((r) => setTimeout(r, 1_000)); // its start event has been handled by now
    assert.deepEqual(await daemon.history('web'), [], 'a one-off container is never a deployment');
    assert.doesNotMatch(await daemon.logs(), /rgcompose_web_run_1.*known-good|deployment detected/, 'nor known-good');

    await compose('rollguard-fixture:v2-errors-vol', 'up', '-d');
    const d = await settled(daemon, 0);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.match(d.to_ref, /v2-errors-vol/);
    const restored = await inspect('rgcompose_web_1');
    assert.equal(restored?.State.Running, true);
    assert.equal(restored?.Image, first.Image, 'the known-good image runs again under the Compose name');
    assert.equal((await docker('exec', 'rgcompose_web_1', 'cat', '/data/file')).trim(), 'written-by-v1', 'the data in the image volume survived deploy and revert');
    assert.match(await compose('x', 'ps'), /rgcompose_web_1\s.*Up/, 'Compose still recognises the restored container');
    assert.equal(await readyStatus(), 200);
    await compose('x', 'down', '-v');
  });

  it('data written into an image volume under plain docker run is there again after deploy + revert', async () => {
    const daemon = await restart(fixturePolicy(prom.url, { container: 'rg-svc-vol' }));
    // An image VOLUME (/data) and an anonymous --mount (/cache): each a new, empty volume per container.
    const cache = ['--mount', 'type=volume,target=/cache'];
    await deploy('rg-svc-vol', 'rollguard-fixture:v1-vol', cache);
    await waitFor('adopted', async () => (await daemon.status()).services.web?.image);
    await waitFor('the fixture serving', async () => (await readyStatus()) === 200);
    await docker('exec', 'rg-svc-vol', 'sh', '-c', 'echo precious > /data/file && echo warm > /cache/file');
    const volumesOf = async (): Promise<string[]> => (await docker('inspect', '-f', '{{range .Mounts}}{{.Destination}}={{.Name}} {{end}}', 'rg-svc-vol')).split(' ').filter(Boolean).sort();
    const volumesBefore = await volumesOf();
    await deploy('rg-svc-vol', 'rollguard-fixture:v2-errors-vol', cache); // docker rm -f + docker run: new, empty volumes
    const d = await settled(daemon, 0);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.equal((await docker('exec', 'rg-svc-vol', 'cat', '/data/file')).trim(), 'precious');
    assert.equal((await docker('exec', 'rg-svc-vol', 'cat', '/cache/file')).trim(), 'warm');
    assert.deepEqual(await volumesOf(), volumesBefore, 'the known-good container has its own volumes back');
    await removeContainers('rg-svc-vol');
  });

  it('a --rm service is reverted and ends with a known-good container running', async () => {
    const daemon = await restart(fixturePolicy(prom.url, { container: 'rg-svc-rm' }));
    await docker('rm', '-f', 'rg-svc-rm').catch(() => '');
    await docker('run', '-d', '--rm', '--name', 'rg-svc-rm', '--network', 'host', '-e', 'PORT=18080', 'rollguard-fixture:v1');
    await waitFor('adopted', async () => (await daemon.status()).services.web?.image === images.good);
    await docker('rm', '-f', 'rg-svc-rm');
    await docker('run', '-d', '--rm', '--name', 'rg-svc-rm', '--network', 'host', '-e', 'PORT=18080', 'rollguard-fixture:v2-unready');
    const d = await settled(daemon, 0);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    const now = await inspect('rg-svc-rm');
    assert.equal(now?.State.Running, true, 'a known-good container runs');
    assert.equal(now?.Image, images.good);
    assert.equal(await readyStatus(), 200);
    assert.match(await daemon.logs(), /Docker removed it as it stopped/);
    await removeContainers('rg-svc-rm');
  });

  it('a reconfiguration of the same image is a deployment; once it passed, a later revert restores its new settings', async () => {
    const daemon = await restart(fixturePolicy(prom.url, { container: 'rg-svc-cfg' }));
    await deploy('rg-svc-cfg', 'rollguard-fixture:v1', ['-e', 'RPS=100']);
    await waitFor('adopted', async () => (await daemon.status()).services.web?.image === images.good);

    await deploy('rg-svc-cfg', 'rollguard-fixture:v1', ['-e', 'RPS=50']);
    const reconfigured = await settled(daemon, 0);
    assert.equal(reconfigured.state, 'passed', `reason: ${reconfigured.reason}`);
    assert.equal(reconfigured.from_image, images.good);
    assert.equal(reconfigured.to_image, images.good, 'same image, new settings');

    await deploy('rg-svc-cfg', 'rollguard-fixture:v2-errors', ['-e', 'RPS=50']);
    const bad = await settled(daemon, reconfigured.id);
    assert.equal(bad.state, 'rolled_back', `reason: ${bad.reason}`);
    assert.equal((await inspect('rg-svc-cfg'))?.Image, images.good);
    assert.equal((await envOf('rg-svc-cfg')).RPS, '50', 'the restored container has the settings that passed, not the adopted ones');

    // A bad reconfiguration of the known-good image is reverted to the known-good settings, and
    // the image itself is not marked bad: a later good reconfiguration of it is watched as usual.
    await deploy('rg-svc-cfg', 'rollguard-fixture:v1', ['-e', 'RPS=50', '-e', 'ERROR_PCT=20']);
    const badConfig = await settled(daemon, bad.id);
    assert.equal(badConfig.state, 'rolled_back', `reason: ${badConfig.reason}`);
    assert.equal((await envOf('rg-svc-cfg')).ERROR_PCT, '0');
    await deploy('rg-svc-cfg', 'rollguard-fixture:v1', ['-e', 'RPS=60']);
    const goodAgain = await settled(daemon, badConfig.id);
    assert.equal(goodAgain.state, 'passed', `reason: ${goodAgain.reason}`);
    await removeContainers('rg-svc-cfg');
  });

  it('a version that keeps crashing is reverted even when the policy names only a Prometheus rule', async () => {
    const daemon = await restart(prometheusOnly(fixturePolicy(prom.url, { container: 'rg-svc-crash', window: '20s' })));
    await deploy('rg-svc-crash', 'rollguard-fixture:v1');
    await waitFor('adopted', async () => (await daemon.status()).services.web?.image === images.good);
    await deploy('rg-svc-crash', 'rollguard-fixture:v1', ['-e', 'CRASH_AFTER=1']);
    const d = await settled(daemon, 0);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /replicas not serving/);
    assert.equal((await envOf('rg-svc-crash')).CRASH_AFTER, undefined, 'the known-good settings run again');
    await waitFor('the restored container serving', async () => (await readyStatus()) === 200);
    await removeContainers('rg-svc-crash');
  });

  it('a version that keeps breaching, never for long enough to revert, does not become known-good', async () => {
    const daemon = await restart(fixturePolicy(prom.url, { container: 'rg-svc-flap', window: '12s' }));
    await deploy('rg-svc-flap', 'rollguard-fixture:v1');
    await waitFor('adopted', async () => (await daemon.status()).services.web?.image === images.good);
    await deploy('rg-svc-flap', 'rollguard-fixture:v1', ['-e', 'READY_FLAP=1']);
    const d = await settled(daemon, 0);
    assert.equal(d.state, 'inconclusive', `reason: ${d.reason}`);
    assert.match(d.reason ?? '', /"readiness failing" (breached in \d+ of \d+ samples|was breaching when the window closed).*not known-good/);
    // Still the adopted version is the revert target: a bad deploy now goes back to it, not to the flapping one.
    await deploy('rg-svc-flap', 'rollguard-fixture:v2-unready');
    const bad = await settled(daemon, d.id);
    assert.equal(bad.state, 'rolled_back', `reason: ${bad.reason}`);
    assert.equal((await envOf('rg-svc-flap')).READY_FLAP, undefined);
    await removeContainers('rg-svc-flap');
  });

  it('two replicas replaced one by one are one deployment, both reverted with their own settings; a replica already good is left alone', async () => {
    const prom2 = await startPrometheus([{ port: 18081, service: 'web' }, { port: 18082, service: 'web' }]);
    try {
      const replica = (name: string, image: string, port: number): Promise<string> => deploy(name, image, ['--label', 'app=rgreplica'], port);
      const policy = fixturePolicy(prom2.url, { port: 18081 }).replace('      container: rg-web', '      labels: {app: rgreplica}');
      const daemon = await restart(policy);
      await replica('rg-svc-r1', 'rollguard-fixture:v1', 18081);
      await replica('rg-svc-r2', 'rollguard-fixture:v1', 18082);
      await prom2.waitForData();
      await waitFor('both replicas adopted', async () => (await daemon.status() as { services: Record<string, { replicas?: number }> }).services.web?.replicas === 2);

      await replica('rg-svc-r1', 'rollguard-fixture:v2-errors', 18081);
      await replica('rg-svc-r2', 'rollguard-fixture:v2-errors', 18082);
      const d = await settled(daemon, 0);
      assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
      assert.equal((await daemon.history('web')).length, 1, 'one deployment, not one per replica');
      for (const [name, port] of [['rg-svc-r1', '18081'], ['rg-svc-r2', '18082']] as const) {
        const c = await inspect(name);
        assert.equal(c?.Image, images.good, `${name} runs the known-good image again`);
        assert.equal(c?.State.Running, true);
        assert.equal((await envOf(name)).PORT, port, `${name} has its own settings`);
        assert.equal(await readyStatus(Number(port)), 200);
      }

      // Only the first replica updated: it alone is set aside and put back.
      const untouched = (await inspect('rg-svc-r2'))?.Id;
      await replica('rg-svc-r1', 'rollguard-fixture:v2-errors', 18081);
      const partial = await settled(daemon, d.id);
      assert.equal(partial.state, 'rolled_back', `reason: ${partial.reason}`);
      assert.equal((await inspect('rg-svc-r1'))?.Image, images.good);
      assert.equal((await inspect('rg-svc-r2'))?.Id, untouched, 'the replica that was already good is left alone');
      assert.deepEqual((await docker('ps', '-a', '--format', '{{.Names}}', '--filter', 'name=^/rg-svc-r')).split('\n').sort(), ['rg-svc-r1', 'rg-svc-r2'], 'no parked container is left');
    } finally {
      await prom2.stop();
      await removeContainers('rg-svc-r');
    }
  });

  it('a known-good container left stopped under its name is started again; a name held by a container rollguard did not make is left alone, and the revert fails saying so', async () => {
    const daemon = await restart(fixturePolicy(prom.url).replace('      container: rg-web', '      labels: {app: rgbluegreen}'));
    const label = ['--label', 'app=rgbluegreen'];
    await deploy('rg-svc-blue', 'rollguard-fixture:v1', label);
    await waitFor('adopted', async () => (await daemon.status()).services.web?.image === images.good);
    const blue = (await inspect('rg-svc-blue'))?.Id;

    // Blue/green by hand: the old one stopped (kept for a quick way back), the new one started beside it.
    await docker('stop', 'rg-svc-blue');
    await deploy('rg-svc-green', 'rollguard-fixture:v2-unready', label);
    const d = await settled(daemon, 0);
    assert.equal(d.state, 'rolled_back', `reason: ${d.reason}`);
    const back = await inspect('rg-svc-blue');
    assert.equal(back?.Id, blue, 'the stopped known-good container itself was started, not a copy');
    assert.equal(back?.State.Running, true);
    assert.equal(await inspect('rg-svc-green'), undefined, 'the bad one is removed once recovery is verified');

    // Now the name belongs to a container of another version that nobody asked rollguard to manage.
    await docker('rm', '-f', 'rg-svc-blue');
    await docker('create', '--name', 'rg-svc-blue', '--network', 'host', '-e', 'PORT=18080', 'rollguard-fixture:v1.1');
    await deploy('rg-svc-green', 'rollguard-fixture:v2-errors', label);
    const failed = await settled(daemon, d.id, 90_000);
    assert.equal(failed.state, 'rollback_failed', `reason: ${failed.reason}`);
    assert.match(failed.reason ?? '', /the name is held by container [0-9a-f]{12} \(rollguard-fixture:v1\.1, stopped\), which rollguard did not create; it was left alone/);
    assert.match(failed.reason ?? '', /the deployed version was put back/);
    const holder = await inspect('rg-svc-blue');
    assert.equal(holder?.Image, images.good2, 'the holder is still there');
    assert.equal(holder?.State.Running, false, 'and untouched');
    assert.equal((await inspect('rg-svc-green'))?.State.Running, true, 'the deployed version serves again: never nothing running');
    await removeContainers('rg-svc-');
  });

  it('a Swarm task container is never watched as a plain container, and a warning says why', async () => {
    const daemon = await restart(fixturePolicy(prom.url, { container: 'rg-svc-swarm' }));
    await deploy('rg-svc-swarm', 'rollguard-fixture:v1', ['--label', 'com.docker.swarm.service.name=web', '--label', 'com.docker.swarm.task.id=t1']);
    await deploy('rg-svc-swarm', 'rollguard-fixture:v2-errors', ['--label', 'com.docker.swarm.service.name=web', '--label', 'com.docker.swarm.task.id=t2']);
    await waitFor('the warning', async () => /task of a Swarm service/.test(await daemon.logs()));
    await new Promise((r) => setTimeout(r, 4_000));
    assert.deepEqual(await daemon.history('web'), []);
    assert.equal((await daemon.status()).services.web?.image, null);
    assert.equal((await inspect('rg-svc-swarm'))?.Image, images.errors, 'nothing was touched');
    await removeContainers('rg-svc-swarm');
  });
});
