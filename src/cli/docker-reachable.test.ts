import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import Docker from 'dockerode';
import { DockerUnreachableError, explainUnreachable, otherEngines, reachDocker } from './docker-reachable.js';

const sysErr = (code: string): Error => Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });

describe('explainUnreachable', () => {
  it('a missing socket names the socket, that DOCKER_HOST is not set, and the engine first', () => {
    const e = explainUnreachable(sysErr('ENOENT'), 'unix:///var/run/docker.sock', {});
    assert.ok(e instanceof DockerUnreachableError);
    assert.equal(e.message, 'cannot reach the Docker engine at unix:///var/run/docker.sock (DOCKER_HOST not set): connect ENOENT. Check that the engine is running (systemctl status docker) and that your user can use the socket (member of the docker group: sudo usermod -aG docker "$USER", then log in again).');
  });

  it('a socket the user may not use leads with the docker group', () => {
    const e = explainUnreachable(sysErr('EACCES'), 'unix:///var/run/docker.sock', {});
    assert.match(e?.message ?? '', /: permission denied \(EACCES\)\. Check that your user can use the socket \(member of the docker group.*\) and that the engine is running/);
  });

  it('names DOCKER_HOST when the address came from it', () => {
    const e = explainUnreachable(sysErr('ECONNREFUSED'), 'tcp://10.0.0.9:2375', { DOCKER_HOST: 'tcp://10.0.0.9:2375' });
    assert.match(e?.message ?? '', /^cannot reach the Docker engine at tcp:\/\/10\.0\.0\.9:2375 \(DOCKER_HOST=tcp:\/\/10\.0\.0\.9:2375\): connect ECONNREFUSED\. Check that the engine is running and listens at that address, and DOCKER_HOST\.$/);
  });

  it('an engine that answered with an error is not "unreachable"', () => {
    assert.equal(explainUnreachable(Object.assign(new Error('(HTTP code 500) server error'), { statusCode: 500 }), 'unix:///var/run/docker.sock', {}), undefined);
  });
});

describe('reachDocker', () => {
  it('a socket file nobody listens on is ECONNREFUSED at that socket', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-reach-'));
    const socket = path.join(dir, 'docker.sock');
    // A process that listened and was killed leaves its socket file behind, with nobody listening.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    try {
      await assert.rejects(reachDocker({ docker: new Docker({ socketPath: socket }), env: {} }), (err: unknown) => {
        assert.ok(err instanceof DockerUnreachableError);
        assert.equal(err.endpoint, `unix://${socket}`);
        assert.equal(err.code, 'ECONNREFUSED');
        assert.match(err.message, /connect ECONNREFUSED\. Check that the engine is running/);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a DOCKER_HOST that is not an address is said so', async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'tcp://[::1';
    try {
      await assert.rejects(reachDocker(), (err: unknown) => err instanceof DockerUnreachableError && /DOCKER_HOST=tcp:\/\/\[::1 is not an address/.test(err.message));
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it('an engine that accepts the connection and never answers is given up on at the deadline, the request closed', { timeout: 10_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-reach-'));
    const socket = path.join(dir, 'docker.sock');
    const held: net.Socket[] = [];
    const server = net.createServer((s) => { held.push(s); s.resume(); });
    server.listen(socket);
    await once(server, 'listening');
    try {
      await assert.rejects(reachDocker({ docker: new Docker({ socketPath: socket }), env: {}, timeoutMs: 300 }), (err: unknown) => {
        assert.ok(err instanceof DockerUnreachableError);
        assert.equal(err.code, undefined);
        assert.match(err.message, /at unix:\/\/.*docker\.sock \(DOCKER_HOST not set\): it accepted the connection but did not answer within 300 ms \(engine hung\?\)/);
        assert.doesNotMatch(err.message, /ETIMEDOUT|docker group/);
        return true;
      });
      // The ping was aborted, not merely raced: its connection ends, so nothing keeps `init` alive.
      const conn = held[0];
      assert.ok(conn, 'the ping connected');
      if (!conn.closed) await once(conn, 'close');
    } finally {
      for (const s of held) s.destroy();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('something that answers HTTP but is not Docker (a 404 to /_ping) is said so, as DockerUnreachableError', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-reach-'));
    const socket = path.join(dir, 'web.sock');
    const server = http.createServer((_req, res) => { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'); });
    server.listen(socket);
    await once(server, 'listening');
    try {
      await assert.rejects(reachDocker({ docker: new Docker({ socketPath: socket }), env: { DOCKER_HOST: `unix://${socket}` } }), (err: unknown) => {
        assert.ok(err instanceof DockerUnreachableError);
        assert.match(err.message, /something answers at unix:\/\/.*web\.sock \(DOCKER_HOST=unix:\/\/.*web\.sock\) but it is not a Docker engine \(HTTP 404\)/);
        return true;
      });
    } finally {
      server.closeAllConnections();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with DOCKER_HOST unset and no default socket, it names the docker context and the rootless socket to export', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'rg-reach-home-'));
    const runtime = path.join(home, 'run');
    await mkdir(runtime);
    const rootless = path.join(runtime, 'docker.sock');
    const server = net.createServer();
    server.listen(rootless);
    await once(server, 'listening');
    // What `docker context create remote --docker host=tcp://10.0.0.9:2376 && docker context use remote` leaves.
    const meta = path.join(home, '.docker', 'contexts', 'meta', createHash('sha256').update('remote').digest('hex'));
    await mkdir(meta, { recursive: true });
    await writeFile(path.join(meta, 'meta.json'), JSON.stringify({ Name: 'remote', Endpoints: { docker: { Host: 'tcp://10.0.0.9:2376', SkipTLSVerify: false } } }));
    await writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({ auths: {}, currentContext: 'remote' }));
    try {
      const env = { XDG_RUNTIME_DIR: runtime };
      assert.deepEqual(await otherEngines(env, home), [
        'export DOCKER_HOST=tcp://10.0.0.9:2376   # docker context "remote"',
        `export DOCKER_HOST=unix://${rootless}   # rootless Docker`,
      ]);
      assert.deepEqual(await otherEngines({ ...env, DOCKER_HOST: 'unix:///x.sock' }, home), [], 'an operator who set DOCKER_HOST chose');
      await assert.rejects(reachDocker({ docker: new Docker({ socketPath: path.join(home, 'missing.sock') }), env, home }), (err: unknown) => {
        assert.ok(err instanceof DockerUnreachableError);
        assert.match(err.message, /connect ENOENT\. Check that the engine is running .*\)\.\nAnother engine is set up for this user; to use it, run rollguard with:\n {2}export DOCKER_HOST=tcp:\/\/10\.0\.0\.9:2376 {3}# docker context "remote"\n {2}export DOCKER_HOST=unix:\/\/.*\/run\/docker\.sock {3}# rootless Docker$/);
        return true;
      });
    } finally {
      server.close();
      await rm(home, { recursive: true, force: true });
    }
  });

  it('a context set to default, and no rootless socket, suggest nothing', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'rg-reach-home-'));
    await mkdir(path.join(home, '.docker'));
    await writeFile(path.join(home, '.docker', 'config.json'), JSON.stringify({ currentContext: 'default' }));
    try {
      assert.deepEqual(await otherEngines({ XDG_RUNTIME_DIR: path.join(home, 'none') }, home), []);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
