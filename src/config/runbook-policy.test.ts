import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';
import type { Policy } from './policy.js';

// The runbook's keys of a service — after_rollback, database, down_migration, and the git match
// with its restart — as an operator writes them: defaults applied, secrets only from the
// environment, and every misuse refused with the file, line and key.

const ENV = { APP_DB_URL: 'postgresql://erp:s3cret@127.0.0.1:5432/himalytix', REDIS_URL: 'redis://:p4ss@127.0.0.1:6379/0' };

/** A policy with one service `web` whose match is line 5 and whose own keys (indent 4) start at line 11. */
function policyText(match: string, extra: string[]): string {
  return [
    'version: 1', //                                                          1
    'services:', //                                                           2
    '  web:', //                                                              3
    '    match:', //                                                          4
    `      ${match}`, //                                                      5
    '    signals:', //                                                        6
    '      ready: {http: {url: "http://127.0.0.1:8000/health/ready/"}}', //  7
    '    rules:', //                                                          8
    '      - {name: not ready, signal: ready, below: 1, for: 3, action: rollback}', // 9
    '    recovery: [{signal: ready, above: 0}]', //                           10
    ...extra,
  ].join('\n') + '\n';
}

const parse = (text: string): Policy => parsePolicy(text, 'p.yaml', ENV);

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map(formatProblem);
    throw err;
  }
  assert.fail('expected the policy to be refused');
}

describe('after_rollback, database and down_migration', () => {
  it('reads the issue\'s example with its defaults: in order, timeouts, continue_on_error off, keep 5', () => {
    const web = parse(policyText('compose: {project: himalytix, service: web}', [
      '    after_rollback:',
      '      - restart: {compose_services: [celery, celery-beat]}',
      '      - redis_flush: {url: "${REDIS_URL}", pattern: "cache:*"}',
      '      - exec: {container: himalytix-web, command: [python, manage.py, check, --deploy], timeout: 60s}',
      '      - http: {method: POST, url: "http://127.0.0.1:8000/internal/cache/warm", timeout: 10s, continue_on_error: true}',
      '    database: {url: "${APP_DB_URL}"}',
      '    down_migration: {command: [python, manage.py, migrate, accounting, "0002_add_journal_entry"]}',
    ])).services.web!;
    assert.deepEqual(web.afterRollback, [
      { kind: 'restart', containers: [], composeServices: [{ project: 'himalytix', service: 'celery' }, { project: 'himalytix', service: 'celery-beat' }], timeoutMs: 60_000, continueOnError: false },
      { kind: 'redis_flush', url: ENV.REDIS_URL, pattern: 'cache:*', timeoutMs: 30_000, continueOnError: false },
      { kind: 'exec', container: 'himalytix-web', command: ['python', 'manage.py', 'check', '--deploy'], timeoutMs: 60_000, continueOnError: false },
      { kind: 'http', method: 'POST', url: 'http://127.0.0.1:8000/internal/cache/warm', status: undefined, timeoutMs: 10_000, continueOnError: true },
    ]);
    assert.deepEqual(web.database, { url: ENV.APP_DB_URL, keep: 5, timeoutMs: 600_000 });
    assert.deepEqual(web.downMigration, { command: ['python', 'manage.py', 'migrate', 'accounting', '0002_add_journal_entry'], timeoutMs: 300_000 });
    assert.equal(web.restart, undefined);
  });

  it('no follow-up steps, no database: an empty list and nothing else', () => {
    const web = parse(policyText('container: web', [])).services.web!;
    assert.deepEqual(web.afterRollback, []);
    assert.equal(web.database, undefined);
    assert.equal(web.downMigration, undefined);
  });

  it('refuses passwords written in the database or Redis URL: they come from the environment', () => {
    assert.deepEqual(problems(policyText('container: web', [
      '    database: {url: "postgresql://erp:hunter2@db/app"}',
      '    after_rollback:',
      '      - redis_flush: {url: "redis://:hunter2@127.0.0.1:6379/0"}',
    ])), [
      'p.yaml:11: services.web.database.url: a password in a URL is a secret and must not be written in the policy; use "${ENV_VAR}" for the URL or its password',
      'p.yaml:13: services.web.after_rollback[0].redis_flush.url: a password in a URL is a secret and must not be written in the policy; use "${ENV_VAR}" for the URL or its password',
    ]);
  });

  it('refuses a step that is not exactly one kind, an empty restart, a bad URL scheme and an empty command, each on its line', () => {
    assert.deepEqual(problems(policyText('container: web', [
      '    after_rollback:',
      '      - {}',
      '      - restart: {}',
      '      - redis_flush: {url: "http://127.0.0.1:6379"}',
      '      - exec: {container: web, command: []}',
      '    database: {url: "mysql://db/app"}',
    ])), [
      'p.yaml:12: services.web.after_rollback[0]: each step is exactly one of restart, redis_flush, exec or http',
      'p.yaml:13: services.web.after_rollback[1].restart: name containers or compose_services to restart',
      'p.yaml:14: services.web.after_rollback[2].redis_flush.url: expected redis://[user:password@]host:port[/db] or rediss://…; give it as ${ENV}',
      'p.yaml:15: services.web.after_rollback[3].exec.command: name the program and its arguments',
      'p.yaml:16: services.web.database.url: expected postgresql://user@host:port/database; give it as ${ENV} (e.g. "${APP_DB_URL}")',
    ]);
  });

  it('compose_services need a compose match; down_migration needs database and is refused for Swarm services', () => {
    assert.deepEqual(problems(policyText('container: web', [
      '    after_rollback:',
      '      - restart: {compose_services: [celery]}',
      '    down_migration: {command: [migrate]}',
    ])), [
      'p.yaml:12: services.web.after_rollback[0].restart.compose_services: compose_services are services of the same Compose project, so this service must be matched by compose; name containers instead',
      'p.yaml:13: services.web.down_migration: down_migration needs database: no schema is changed without a safety snapshot first (runbook Option 3 step 3)',
    ]);
    assert.deepEqual(problems(policyText('swarm_service: web', ['    database: {url: "${APP_DB_URL}"}', '    down_migration: {command: [migrate]}'])), [
      'p.yaml:12: services.web.down_migration: down_migration runs as a one-off container on this engine; for a Swarm service run it from your pipeline',
    ]);
  });
});

describe('git services', () => {
  it('a git match with its defaults (branch main, poll 2s, mode revert) and the restart argv', () => {
    const web = parse(policyText('git: {path: /var/www/himalytix/}', ['    restart: [systemctl, restart, gunicorn.service, celery.service]'])).services.web!;
    assert.deepEqual(web.match, { kind: 'git', path: '/var/www/himalytix', branch: 'main', pollMs: 2_000, mode: 'revert' });
    assert.deepEqual(web.restart, { command: ['systemctl', 'restart', 'gunicorn.service', 'celery.service'], timeoutMs: 120_000 });
  });

  it('refuses a relative path, container signals, a down_migration and a service without recovery criteria', () => {
    const text = policyText('git: {path: srv/app, mode: checkout}', [
      '    down_migration: {command: [migrate]}',
      '    database: {url: "${APP_DB_URL}"}',
    ]).replace('    recovery: [{signal: ready, above: 0}]\n', '    recovery: []\n').replace('    signals:\n', '    signals:\n      up: {container: running}\n');
    assert.deepEqual(problems(text), [
      'p.yaml:5: services.web.match.git: a git service needs recovery criteria (e.g. - {signal: ready, above: 0}): a work tree has no process rollguard could see restart, so only they tell that the revert worked (runbook: "verify")',
      'p.yaml:5: services.web.match.git.path: expected an absolute path',
      'p.yaml:7: services.web.signals.up.container: a git work tree has no container to read; measure the application over http or prometheus',
      'p.yaml:12: services.web.down_migration: down_migration runs in the known-good image, and a git service has none; a code-only deployment carries no migrations (runbook Option 1)',
    ]);
  });

  it('restart is for git services only', () => {
    assert.deepEqual(problems(policyText('container: web', ['    restart: [systemctl, restart, web]'])), [
      'p.yaml:11: services.web.restart: restart is for git services (match: git); a container\'s restart is the revert itself',
    ]);
  });

  it('two services on one work tree are refused, however the path is written', () => {
    const text = policyText('git: {path: /srv/app}', [
      '  api:',
      '    match: {git: {path: "/srv/app/"}}',
      '    signals: {ready: {http: {url: "http://127.0.0.1:8001/ready"}}}',
      '    rules: [{name: not ready, signal: ready, below: 1, action: rollback}]',
      '    recovery: [{signal: ready, above: 0}]',
    ]);
    assert.deepEqual(problems(text), ['p.yaml:12: services.api.match.git.path: /srv/app is already the work tree of service web; one service per work tree']);
  });
});
