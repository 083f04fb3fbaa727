import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';
import type { Policy } from './policy.js';

// pass_after in the policy: a timing key in `defaults:` and per service, like `window`.

/** One array element per line, so that line N of the file is element N - 1. */
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** Service `name` with one rule; `extra` lines go after `name:` (indent 4). */
const svc = (name: string, extra: string[] = []): string[] => [
  `  ${name}:`,
  ...extra,
  '    match: {container: ' + name + '}',
  '    signals: {up: {container: running}}',
  '    rules: [{name: down, signal: up, below: 1}]',
];

/** A policy with `defaults` lines (indent 2) and the services' lines. */
const policy = (defaults: string[], ...services: string[][]): string =>
  yaml('version: 1', ...(defaults.length ? ['defaults:', ...defaults] : []), 'services:', ...services.flat());

const parse = (text: string): Policy => parsePolicy(text, 'p.yaml', {});

/** The problems of a policy that must be refused, as `file:line: path: message`. */
function problems(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems.map(formatProblem);
  }
  assert.fail('the policy was accepted');
}

describe('pass_after: defaults and overrides', () => {
  it('is off unless the policy sets it', () => {
    assert.equal(parse(policy([], svc('web'))).services.web?.passAfter, undefined);
  });

  it('the defaults apply to every service: ok samples, min as milliseconds', () => {
    const p = parse(policy(['  pass_after: {ok: 20, min: 2m}'], svc('web'), svc('api')));
    assert.deepEqual(p.services.web?.passAfter, { ok: 20, minMs: 120_000 });
    assert.deepEqual(p.services.api?.passAfter, { ok: 20, minMs: 120_000 });
  });

  it('a service overrides the defaults, or turns the early pass off with null', () => {
    const p = parse(policy(['  pass_after: {ok: 20, min: 2m}'],
      svc('web', ['    pass_after: {ok: 8, min: 90s}']),
      svc('api', ['    pass_after: null']),
      svc('worker')));
    assert.deepEqual(p.services.web?.passAfter, { ok: 8, minMs: 90_000 });
    assert.equal(p.services.api?.passAfter, undefined);
    assert.deepEqual(p.services.worker?.passAfter, { ok: 20, minMs: 120_000 });
  });

  it('a service may set it without defaults', () => {
    const p = parse(policy([], svc('web', ['    pass_after: {ok: 4, min: 0s}']), svc('api')));
    assert.deepEqual(p.services.web?.passAfter, { ok: 4, minMs: 0 });
    assert.equal(p.services.api?.passAfter, undefined);
  });

  it('min may equal the window', () => {
    const p = parse(policy(['  window: 5m', '  pass_after: {ok: 20, min: 5m}'], svc('web')));
    assert.deepEqual(p.services.web?.passAfter, { ok: 20, minMs: 300_000 });
  });
});

describe('pass_after: refusals', () => {
  const cases: [what: string, text: string, expected: string[]][] = [
    ['ok below 1', policy([], svc('web', ['    pass_after: {ok: 0, min: 1m}'])),
      ['p.yaml:4: services.web.pass_after.ok: Too small: expected number to be >=1']],
    ['ok not a whole number', policy([], svc('web', ['    pass_after: {ok: 2.5, min: 1m}'])),
      ['p.yaml:4: services.web.pass_after.ok: expected an int']],
    ['min not a duration', policy(['  pass_after: {ok: 5, min: soon}'], svc('web')),
      ['p.yaml:3: defaults.pass_after.min: expected a duration such as 500ms, 15s, 10m or 1h']],
    ['either key missing', policy([], svc('web', ['    pass_after: {ok: 5}'])),
      ['p.yaml:4: services.web.pass_after.min: required']],
    ['an unknown key', policy([], svc('web', ['    pass_after: {ok: 5, min: 1m, max: 2m}'])),
      ['p.yaml:4: services.web.pass_after.max: unknown key']],
    ['null in defaults (only a service turns it off)', policy(['  pass_after: null'], svc('web')),
      ['p.yaml:3: defaults.pass_after: expected a mapping']],
    ['min longer than the default window of 10m', policy(['  pass_after: {ok: 5, min: 11m}'], svc('web')),
      ['p.yaml:3: defaults.pass_after.min: pass_after.min (11m) is longer than the window (10m): the window ends first, so it could never pass early']],
    ['min longer than the service\'s own window', policy([], svc('web', ['    window: 2m', '    pass_after: {ok: 5, min: 3m}'])),
      ['p.yaml:5: services.web.pass_after.min: pass_after.min (3m) is longer than the window (2m): the window ends first, so it could never pass early']],
    ['ok samples that take longer than the window', policy(['  interval: 15s', '  window: 4m'], svc('web', ['    pass_after: {ok: 20, min: 1m}'])),
      ['p.yaml:7: services.web.pass_after.ok: pass_after.ok: 20 samples every 15s take 5m, longer than the window (4m), so it could never pass early']],
    ['the defaults\' pass_after against a service\'s shorter window: reported on that window, once',
      policy(['  pass_after: {ok: 4, min: 2m}'], svc('web', ['    window: 1m']), svc('api')),
      ['p.yaml:6: services.web.window: pass_after.min (2m) is longer than the window (1m): the window ends first, so it could never pass early (pass_after from defaults)']],
  ];
  for (const [what, text, expected] of cases) {
    it(`refuses ${what}`, () => assert.deepEqual(problems(text), expected));
  }
});
