import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { engineRefusal } from './preflight.js';

describe('engineRefusal()', () => {
  it('accepts a rootful engine behind a local socket', () => {
    assert.equal(engineRefusal({ endpoint: 'unix:///var/run/docker.sock', securityOptions: ['name=apparmor', 'name=seccomp,profile=builtin', 'name=cgroupns'] }), undefined);
    assert.equal(engineRefusal({ endpoint: 'unix:///var/run/docker.sock', securityOptions: null }), undefined);
  });

  it('refuses a rootless engine: its host network is not this host\'s loopback', () => {
    assert.match(engineRefusal({ endpoint: 'unix:///run/user/1000/docker.sock', securityOptions: ['name=seccomp,profile=builtin', 'name=rootless', 'name=cgroupns'] }) ?? '', /runs rootless: .*127\.0\.0\.1/);
  });

  it('refuses a remote engine reached over tcp:// or ssh://', () => {
    assert.match(engineRefusal({ endpoint: 'http://10.0.0.5:2375', securityOptions: [] }) ?? '', /at http:\/\/10\.0\.0\.5:2375 is not reached through a local socket/);
    assert.match(engineRefusal({ endpoint: 'ssh://build-host', securityOptions: [] }) ?? '', /not reached through a local socket.*unset DOCKER_HOST/);
  });
});
