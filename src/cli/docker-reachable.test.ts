import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { describe, it } from 'node:test';
import Docker from 'dockerode';
import { DockerUnreachableError, explainUnreachable, reachDocker } from './docker-reachable.js';

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
});
