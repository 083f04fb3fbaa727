import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rebaseConfig } from './rebase.js';

describe('rebaseConfig() moves a container config onto another image', () => {
  const oldImage = {
    Cmd: ['/app/server'], Entrypoint: null, WorkingDir: '/app', User: 'app', Env: ['PATH=/usr/bin', 'APP_VERSION=1.4.2'],
    Labels: { 'org.opencontainers.image.version': '1.4.2' }, ExposedPorts: { '8080/tcp': {} },
  };

  it('drops what the container only inherited from its old image, so the new image\'s own defaults apply', () => {
    const config = {
      Image: 'web:1.4.2', Cmd: ['/app/server'], WorkingDir: '/app', User: 'app', ExposedPorts: { '8080/tcp': {} },
      Env: ['PATH=/usr/bin', 'APP_VERSION=1.4.2', 'DATABASE_URL=postgres://db/web'],
      Labels: { 'org.opencontainers.image.version': '1.4.2', 'com.docker.compose.service': 'web' },
    };
    assert.deepEqual(rebaseConfig(config, oldImage), {
      Image: 'web:1.4.2', Env: ['DATABASE_URL=postgres://db/web'], Labels: { 'com.docker.compose.service': 'web' },
    });
  });

  it('keeps what the operator set: a command, a working directory, a variable overriding the image\'s', () => {
    const config = { Cmd: ['/app/server', '--workers=4'], WorkingDir: '/srv', Env: ['APP_VERSION=custom'], Labels: { 'org.opencontainers.image.version': 'pinned' } };
    assert.deepEqual(rebaseConfig(config, oldImage), config);
  });

  it('leaves a config alone when nothing is known of the old image', () => {
    const config = { Cmd: ['/app/server'], Env: ['A=1'] };
    assert.deepEqual(rebaseConfig(config, {}), config);
  });
});
