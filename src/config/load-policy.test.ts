import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';
import type { ServicePolicy } from './policy.js';

type Env = Record<string, string | undefined>;

/** One array element per line, so that line N of the file is element N - 1. */
const yaml = (...lines: string[]): string => lines.join('\n') + '\n';

/** A valid service `web`; `lines` are spliced in after `web:` (indent 4). */
function policyWith(web: string[], top: string[] = []): string {
  return yaml('version: 1', ...top, 'services:', '  web:', ...web);
}

const MINIMAL_WEB = [
  '    match:',
  '      container: web',
  '    signals:',
  '      up:',
  '        container: running',
  '    rules:',
  '      - name: down',
  '        signal: up',
  '        below: 1',
];

function parse(text: string, env: Env = {}) {
  return parsePolicy(text, 'p.yaml', env);
}

function web(text: string, env: Env = {}): ServicePolicy {
  const service = parse(text, env).services.web;
  assert.ok(service, 'service web is missing');
  return service;
}

/** Parses text that must be rejected and returns its problems formatted as `file:line: path: message`. */
function problems(text: string, env: Env = {}): string[] {
  let caught: unknown;
  try {
    parse(text, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  return caught.problems.map(formatProblem);
}

describe('parsePolicy: the example policy', () => {
  const examplePath = new URL('../../config/policy.example.yaml', import.meta.url);
  const text = readFileSync(examplePath, 'utf8');
  const policy = parsePolicy(text, 'config/policy.example.yaml', { PROMETHEUS_URL: 'http://127.0.0.1:9090' });
  const service = policy.services.web;

  it('parses into version 1 with one service, sourced from the absolute path', () => {
    assert.equal(policy.version, 1);
    assert.equal(policy.source, path.resolve('config/policy.example.yaml'));
    assert.deepEqual(Object.keys(policy.services), ['web']);
  });

  it('reads prometheus.url and its default timeout', () => {
    assert.deepEqual(policy.prometheus, { url: 'http://127.0.0.1:9090', timeoutMs: 5_000 });
  });

  it('substitutes ${PROMETHEUS_URL} into prometheus.url', () => {
    const substituted = parsePolicy(text.replace('url: http://127.0.0.1:9090', 'url: ${PROMETHEUS_URL}'), 'config/policy.example.yaml', { PROMETHEUS_URL: 'http://127.0.0.1:19090' });
    assert.equal(substituted.prometheus?.url, 'http://127.0.0.1:19090');
  });

  it('turns the defaults into milliseconds and counts', () => {
    assert.ok(service);
    assert.equal(service.windowMs, 600_000);
    assert.equal(service.intervalMs, 15_000);
    assert.equal(service.maxAttempts, 2);
    assert.equal(service.stopTimeoutMs, 10_000);
    assert.equal(service.recoveryTimeoutMs, 120_000);
    assert.equal(service.minDataRatio, 0.8);
  });

  it('matches the service by container name', () => {
    assert.deepEqual(service?.match, { kind: 'container', name: 'himalytix-web' });
  });

  it('types each signal by its kind', () => {
    assert.ok(service);
    assert.deepEqual(
      Object.values(service.signals).map((s) => [s.name, s.kind]),
      [['error_rate', 'prometheus'], ['ready', 'http'], ['restarts', 'container']],
    );
    assert.deepEqual(service.signals.ready, {
      kind: 'http',
      name: 'ready',
      url: 'http://127.0.0.1:8000/health/ready/',
      timeoutMs: 2_000,
      status: 200,
      json: { status: 'ready', 'checks.database.status': 'ok' },
    });
    assert.deepEqual(service.signals.restarts, { kind: 'container', name: 'restarts', field: 'restart_count' });
    assert.equal(
      service.signals.error_rate?.kind === 'prometheus' && service.signals.error_rate.query,
      'sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[1m]))\n' +
        '  / sum(rate(http_requests_total{service="{{service}}"}[1m]))\n',
    );
  });

  it('keeps the rules in policy order', () => {
    assert.deepEqual(service?.rules, [
      { name: 'error rate above 5%', signal: 'error_rate', above: 0.05, for: 3, severity: 'P0', action: 'rollback' },
      { name: 'readiness failing', signal: 'ready', below: 1, for: 3, severity: 'P0', action: 'rollback' },
      { name: 'container restarting', signal: 'restarts', above: 2, for: 1, severity: 'P1', action: 'notify' },
    ]);
  });

  it('reads the runbook recovery criteria', () => {
    assert.deepEqual(service?.recovery, [
      { signal: 'error_rate', below: 0.01 },
      { signal: 'ready', above: 0 },
    ]);
  });
});

describe('parsePolicy: defaults and overrides', () => {
  it('applies the built-in defaults when nothing is set', () => {
    const policy = parse(policyWith(MINIMAL_WEB));
    assert.equal(policy.prometheus, undefined);
    assert.deepEqual(policy.services.web, {
      name: 'web',
      match: { kind: 'container', name: 'web' },
      windowMs: 600_000,
      intervalMs: 15_000,
      maxAttempts: 2,
      stopTimeoutMs: 10_000,
      recoveryTimeoutMs: 120_000,
      minDataRatio: 0.8,
      signals: { up: { kind: 'container', name: 'up', field: 'running' } },
      rules: [{ name: 'down', signal: 'up', below: 1, for: 1, severity: 'P1', action: 'notify' }],
      recovery: [],
      notify: {},
      warmupMs: 0,
      onNoData: undefined,
      inconclusiveIsGood: false,
      onMigrations: 'hold',
      maxRollbacks: { count: 3, perMs: 3_600_000 },
      onBadImage: 'revert',
      minRequests: undefined,
      afterRollback: [],
      database: undefined,
      downMigration: undefined,
      restart: undefined,
    });
  });

  it('a service-level setting wins over defaults, which win over the built-ins', () => {
    const service = web(policyWith(
      ['    window: 30s', '    max_attempts: 5', '    min_data_ratio: 0', '    stop_timeout: 0s', ...MINIMAL_WEB],
      ['defaults:', '  window: 5m', '  interval: 1m', '  max_attempts: 3'],
    ));
    assert.equal(service.windowMs, 30_000, 'service window');
    assert.equal(service.intervalMs, 60_000, 'defaults interval');
    assert.equal(service.maxAttempts, 5, 'service max_attempts');
    assert.equal(service.minDataRatio, 0, 'service min_data_ratio of 0 is kept, not replaced by the default');
    assert.equal(service.stopTimeoutMs, 0, 'service stop_timeout of 0s is kept, not replaced by the default');
    assert.equal(service.recoveryTimeoutMs, 120_000, 'built-in recovery_timeout');
  });

  it('max_rollbacks and on_bad_image: a service overrides the defaults, which override 3 per 1h and revert', () => {
    const policy = parse(yaml(
      'version: 1',
      'defaults:',
      '  max_rollbacks: {count: 2, per: 30m}',
      '  on_bad_image: warn',
      'services:',
      '  web:',
      ...MINIMAL_WEB,
      '    max_rollbacks: {count: 5, per: 2h}',
      '    on_bad_image: revert',
      '  api:',
      ...MINIMAL_WEB.map((l) => l.replace('container: web', 'container: api')),
    ));
    assert.deepEqual(policy.services.web?.maxRollbacks, { count: 5, perMs: 7_200_000 });
    assert.equal(policy.services.web?.onBadImage, 'revert');
    assert.deepEqual(policy.services.api?.maxRollbacks, { count: 2, perMs: 1_800_000 }, 'the defaults apply where the service says nothing');
    assert.equal(policy.services.api?.onBadImage, 'warn');
  });

  const matches: [form: string, expected: ServicePolicy['match']][] = [
    ['container: himalytix-web', { kind: 'container', name: 'himalytix-web' }],
    ['compose: {project: himalytix, service: web}', { kind: 'compose', project: 'himalytix', service: 'web' }],
    ['labels: {app: web, tier: front}', { kind: 'labels', labels: { app: 'web', tier: 'front' } }],
  ];
  for (const [form, expected] of matches) {
    it(`match ${form} becomes a ${expected.kind} match`, () => {
      const lines = MINIMAL_WEB.map((l) => (l === '      container: web' ? `      ${form}` : l));
      assert.deepEqual(web(policyWith(lines)).match, expected);
    });
  }

  it('an http signal defaults to a 2s timeout, status 200 and no JSON expectations', () => {
    const lines = MINIMAL_WEB.map((l) => (l === '        container: running' ? '        http: {url: "http://127.0.0.1:8000/health"}' : l));
    assert.deepEqual(web(policyWith(lines)).signals.up, {
      kind: 'http', name: 'up', url: 'http://127.0.0.1:8000/health', timeoutMs: 2_000, status: 200, json: {},
    });
  });

  it('prometheus.url loses trailing slashes and timeout defaults to 5s', () => {
    const policy = parse(policyWith(MINIMAL_WEB, ['prometheus:', '  url: http://prom:9090//']));
    assert.deepEqual(policy.prometheus, { url: 'http://prom:9090', timeoutMs: 5_000 });
  });
});

describe('parsePolicy: environment variables', () => {
  const withEnvName = MINIMAL_WEB.map((l) => (l === '      container: web' ? '      container: ${WEB_NAME}-${SUFFIX}' : l));

  it('substitutes ${VAR} inside string values', () => {
    assert.deepEqual(web(policyWith(withEnvName), { WEB_NAME: 'himalytix', SUFFIX: 'web' }).match, { kind: 'container', name: 'himalytix-web' });
  });

  it('an unset variable is an error naming its line', () => {
    assert.deepEqual(problems(policyWith(withEnvName), { SUFFIX: 'web' }), [
      'p.yaml:5: environment variable WEB_NAME is not set',
    ]);
  });

  it('every unset variable is reported', () => {
    assert.deepEqual(problems(policyWith(withEnvName)), [
      'p.yaml:5: environment variable WEB_NAME is not set',
      'p.yaml:5: environment variable SUFFIX is not set',
    ]);
  });

  it(
    'an unset variable inside a multi-line query is reported on the line that names it',
    () => {
      const text = yaml(
        'version: 1',
        'prometheus:',
        '  url: http://prom:9090',
        'services:',
        '  web:',
        '    match:',
        '      container: web',
        '    signals:',
        '      errors:',
        '        prometheus: |',
        '          sum(rate(http_requests_total{service="{{service}}"}[1m]))',
        '            / ${DENOM}',
        '    rules:',
        '      - {name: errors, signal: errors, above: 0.05}',
      );
      assert.deepEqual(problems(text), ['p.yaml:12: environment variable DENOM is not set']);
    },
  );
});

describe('parsePolicy: problems', () => {
  const SIX_MISTAKES = yaml(
    'version: 1', //                 1
    'prometheus:', //                2
    '  url: http://prom:9090', //    3
    '  timeout: 5 seconds', //       4  not a duration
    'defaults:', //                  5
    '  interval: 15s', //            6
    '  max_attempts: 0', //          7  below the minimum
    'services:', //                  8
    '  web:', //                     9
    '    match:', //                 10
    '      container: web', //       11
    '    signals:', //               12
    '      up:', //                  13
    '        container: running', // 14
    '    rules:', //                 15
    '      - name: down', //         16
    '        signal: upp', //        17 undefined signal
    '        above: lots', //        18 not a number
    '        colour: red', //        19 unknown key
    '        severity: P4', //       20 not a severity
  );

  it('reports every problem at once, in line order, as file:line: path: message', () => {
    assert.deepEqual(problems(SIX_MISTAKES), [
      'p.yaml:4: prometheus.timeout: expected a duration such as 500ms, 15s, 10m or 1h',
      'p.yaml:7: defaults.max_attempts: Too small: expected number to be >=1',
      'p.yaml:17: services.web.rules[0].signal: unknown signal "upp"; defined: up',
      'p.yaml:18: services.web.rules[0].above: expected a number',
      'p.yaml:19: services.web.rules[0].colour: unknown key',
      'p.yaml:20: services.web.rules[0].severity: expected one of "P0", "P1", "P2"',
    ]);
  });

  it('throws a ConfigError whose problems are structured and whose message lists them all', () => {
    assert.throws(() => parse(SIX_MISTAKES), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.name, 'ConfigError');
      assert.equal(err.problems.length, 6);
      assert.deepEqual(err.problems[3], { file: 'p.yaml', line: 18, path: 'services.web.rules[0].above', message: 'expected a number' });
      assert.equal(err.message, err.problems.map(formatProblem).join('\n'));
      return true;
    });
  });

  const unknownKeys: [where: string, text: string, problem: string][] = [
    ['at the top level', yaml('version: 1', 'servics: {}', 'services: {}'), 'p.yaml:2: servics: unknown key'],
    ['in a rule', policyWith([...MINIMAL_WEB, '        colour: red']), 'p.yaml:13: services.web.rules[0].colour: unknown key'],
    ['in a rule, with no value', policyWith([...MINIMAL_WEB, '        colour:']), 'p.yaml:13: services.web.rules[0].colour: unknown key'],
    [
      'in an http signal',
      policyWith(MINIMAL_WEB.map((l) => (l === '        container: running' ? '        http: {url: "http://x/", timout: 2s}' : l))),
      'p.yaml:8: services.web.signals.up.http.timout: unknown key',
    ],
    ['in a service', policyWith(['    windw: 10m', ...MINIMAL_WEB]), 'p.yaml:4: services.web.windw: unknown key'],
  ];
  for (const [where, text, problem] of unknownKeys) {
    it(`rejects an unknown key ${where}`, () => {
      assert.deepEqual(problems(text), [problem]);
    });
  }

  it(
    'reports an unknown key whose value is a nested block on the key\'s own line',
    () => {
      assert.deepEqual(problems(policyWith(['    matcher:', '      container: x', ...MINIMAL_WEB])), [
        'p.yaml:4: services.web.matcher: unknown key',
      ]);
    },
  );

  it('rejects a rule naming an undefined signal, listing the defined ones', () => {
    const lines = MINIMAL_WEB.map((l) => (l === '        signal: up' ? '        signal: nope' : l));
    assert.deepEqual(problems(policyWith(lines)), ['p.yaml:11: services.web.rules[0].signal: unknown signal "nope"; defined: up']);
  });

  it('rejects a recovery check naming an undefined signal', () => {
    assert.deepEqual(problems(policyWith([...MINIMAL_WEB, '    recovery:', '      - {signal: nope, below: 1}'])), [
      'p.yaml:14: services.web.recovery[0].signal: unknown signal "nope"; defined: up',
    ]);
  });

  it(
    'rejects a rule naming a signal called like an Object.prototype member',
    () => {
      const lines = MINIMAL_WEB.map((l) => (l === '        signal: up' ? '        signal: constructor' : l));
      assert.deepEqual(problems(policyWith(lines)), ['p.yaml:11: services.web.rules[0].signal: unknown signal "constructor"; defined: up']);
    },
  );

  it('rejects a rule with no signals defined at all, saying none are', () => {
    const text = yaml('version: 1', 'services:', '  web: {match: {container: web}, rules: [{name: down, signal: up, below: 1}]}');
    assert.deepEqual(problems(text), [
      'p.yaml:3: services.web.rules[0].signal: unknown signal "up"; defined: none',
      'p.yaml:3: services.web.signals: required',
    ]);
  });

  it('rejects duplicate rule names, pointing at the second', () => {
    assert.deepEqual(problems(policyWith([...MINIMAL_WEB, '      - name: down', '        signal: up', '        above: 5'])), [
      'p.yaml:13: services.web.rules[1].name: duplicate rule name "down"',
    ]);
  });

  const thresholds: [what: string, lines: string[]][] = [
    ['both above and below', [...MINIMAL_WEB, '        above: 3']],
    ['neither above nor below', MINIMAL_WEB.filter((l) => l !== '        below: 1')],
  ];
  for (const [what, lines] of thresholds) {
    it(`rejects a rule with ${what}`, () => {
      assert.deepEqual(problems(policyWith(lines)), ['p.yaml:10: services.web.rules[0]: set exactly one of above, below, above_baseline, above_baseline_by or burn_rate']);
    });
  }

  it('rejects a recovery check with both above and below', () => {
    assert.deepEqual(problems(policyWith([...MINIMAL_WEB, '    recovery:', '      - {signal: up, above: 0, below: 1}'])), [
      'p.yaml:14: services.web.recovery[0]: set exactly one of above or below',
    ]);
  });

  const matchForms: [what: string, line: string][] = [
    ['two forms', '    match: {container: web, labels: {app: web}}'],
    ['no form', '    match: {}'],
  ];
  for (const [what, line] of matchForms) {
    it(`rejects a match with ${what}`, () => {
      const lines = [line, ...MINIMAL_WEB.slice(2)];
      assert.deepEqual(problems(policyWith(lines)), ['p.yaml:4: services.web.match: set exactly one of container, compose, labels, swarm_service, stack or git']);
    });
  }

  it(
    'reports a block-style match with two forms on the `match:` line',
    () => {
      assert.deepEqual(problems(policyWith(['    match:', '      container: web', '      labels: {app: web}', ...MINIMAL_WEB.slice(2)])), [
        'p.yaml:4: services.web.match: set exactly one of container, compose, labels, swarm_service, stack or git',
      ]);
    },
  );

  it('rejects labels: {} as a match', () => {
    const lines = ['    match: {labels: {}}', ...MINIMAL_WEB.slice(2)];
    assert.deepEqual(problems(policyWith(lines)), ['p.yaml:4: services.web.match.labels: must name at least one label']);
  });

  it('rejects a prometheus signal when there is no prometheus.url', () => {
    const lines = MINIMAL_WEB.map((l) => (l === '        container: running' ? '        prometheus: up{service="{{service}}"}' : l));
    assert.deepEqual(problems(policyWith(lines)), [
      'p.yaml:8: services.web.signals.up.prometheus: a prometheus signal needs the top-level prometheus.url',
    ]);
  });

  it('rejects unsafe or unknown placeholders in a prometheus query', () => {
    const lines = MINIMAL_WEB.map((l) => (l === '        container: running' ? `        prometheus: up{a={{service}}, b='{{image}}', c="{{nope}}"}` : l));
    assert.deepEqual(problems(policyWith(lines, ['prometheus:', '  url: http://prom:9090'])), [
      'p.yaml:10: services.web.signals.up.prometheus: {{service}} must stand inside a double-quoted label value, e.g. service="{{service}}"',
      'p.yaml:10: services.web.signals.up.prometheus: {{image}} must stand inside a double-quoted label value, e.g. service="{{image}}"',
      'p.yaml:10: services.web.signals.up.prometheus: unknown placeholder {{nope}}; valid: {{service}}, {{container}}, {{image}}, {{version}}, {{task}}, {{slot}}, {{node}}, {{node_addr}}',
    ]);
  });

  it('rejects a signal with two kinds', () => {
    const lines = [
      '    match: {container: web}',
      '    signals:',
      '      up: {container: running, http: {url: "http://x/"}}',
      '    rules:',
      '      - {name: down, signal: up, below: 1}',
    ];
    assert.deepEqual(problems(policyWith(lines)), ['p.yaml:6: services.web.signals.up: set exactly one of prometheus, http, container or alertmanager']);
  });

  it('rejects bad max_rollbacks and on_bad_image values with their lines', () => {
    const text = yaml(
      'version: 1', //                                  1
      'defaults:', //                                   2
      '  max_rollbacks: {count: 0, per: 1h}', //        3
      '  on_bad_image: ignore', //                      4
      'services:', //                                   5
      '  web:', //                                      6
      ...MINIMAL_WEB, //                                7-15
      '    max_rollbacks:', //                          16
      '      count: 3', //                              17
      '      per: an hour', //                          18
      '      every: 1h', //                             19
    );
    assert.deepEqual(problems(text), [
      'p.yaml:3: defaults.max_rollbacks.count: Too small: expected number to be >=1',
      'p.yaml:4: defaults.on_bad_image: expected one of "revert", "warn"',
      'p.yaml:18: services.web.max_rollbacks.per: expected a duration such as 500ms, 15s, 10m or 1h',
      'p.yaml:19: services.web.max_rollbacks.every: unknown key',
    ]);
  });

  it('rejects max_rollbacks without its count or per', () => {
    assert.deepEqual(problems(policyWith([...MINIMAL_WEB, '    max_rollbacks: {count: 3}'])), [
      'p.yaml:13: services.web.max_rollbacks.per: required',
    ]);
  });

  it('rejects a service without rules', () => {
    assert.deepEqual(problems(policyWith([...MINIMAL_WEB.slice(0, 5), '    rules: []'])), [
      'p.yaml:9: services.web.rules: a watched service needs at least one rule',
    ]);
  });

  it('rejects any version but 1', () => {
    assert.deepEqual(problems(yaml('version: 2', 'services: {}')), ['p.yaml:1: version: expected 1 (the only policy version)']);
  });

  it(
    'explains why a signal name is invalid',
    () => {
      const lines = [
        '    match: {container: web}',
        '    signals:',
        '      "up now": {container: running}',
        '    rules:',
        '      - {name: down, signal: up now, below: 1}',
      ];
      assert.deepEqual(problems(policyWith(lines)), ['p.yaml:6: services.web.signals["up now"]: signal names are letters, digits, _ and -']);
    },
  );

  it('reports invalid YAML syntax as a ConfigError with the parser\'s message', () => {
    assert.throws(() => parse(yaml('version: 1', 'services:', '  web: [a, b', '  x: 1')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      assert.equal(err.problems[0]?.path, '');
      assert.equal(err.problems[0]?.message, 'Flow sequence in block collection must be sufficiently indented and end with a ]');
      return true;
    });
  });

  it(
    'reports the line of invalid YAML syntax',
    () => {
      assert.deepEqual(problems(yaml('version: 1', 'services:', '  web: [a, b', '  x: 1')), [
        'p.yaml:4: Flow sequence in block collection must be sufficiently indented and end with a ]',
      ]);
    },
  );

  it('rejects duplicate keys', () => {
    assert.throws(() => parse(yaml('version: 1', 'version: 1', 'services: {}')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.message), ['Map keys must be unique']);
      return true;
    });
  });

  it(
    'reports the line of a duplicate key',
    () => {
      assert.deepEqual(problems(policyWith([...MINIMAL_WEB, '        below: 2'])), ['p.yaml:13: Map keys must be unique']);
    },
  );

  const emptyFiles: [what: string, text: string][] = [
    ['an empty file', ''],
    ['a file of only comments', '# nothing here yet\n'],
  ];
  for (const [what, text] of emptyFiles) {
    it(`rejects ${what}, naming the missing keys`, () => {
      assert.deepEqual(problems(text), ['p.yaml: version: expected 1 (the only policy version)', 'p.yaml: services: required']);
    });
  }

  it('rejects a document that is not a mapping', () => {
    assert.deepEqual(problems('hello\n'), ['p.yaml:1: expected a mapping']);
  });
});

describe('parsePolicy: credentials in URLs', () => {
  const withReady = (url: string): string[] => [
    '    match:',
    '      container: web',
    '    signals:',
    '      ready:',
    '        http:',
    `          url: ${url}`,
    '    rules:',
    '      - name: down',
    '        signal: ready',
    '        below: 1',
  ];

  it('keeps the credentials of a Prometheus URL from the environment: the client needs them', () => {
    const policy = parse(policyWith(MINIMAL_WEB, ['prometheus:', '  url: ${PROM_URL}']), { PROM_URL: 'http://rollguard:s3cret@prom:9090/' });
    assert.equal(policy.prometheus?.url, 'http://rollguard:s3cret@prom:9090');
  });

  it('accepts a password from the environment inside a written URL', () => {
    const policy = parse(policyWith(MINIMAL_WEB, ['prometheus:', '  url: http://rollguard:${PROM_PASSWORD}@prom:9090']), { PROM_PASSWORD: 's3cret' });
    assert.equal(policy.prometheus?.url, 'http://rollguard:s3cret@prom:9090');
  });

  it('refuses a password written in the Prometheus, HTTP check and webhook URLs, naming each line and key', () => {
    const text = policyWith(withReady('http://probe:pw@127.0.0.1:8000/ready'), [
      'prometheus:',
      '  url: http://rollguard:s3cret@prom:9090',
      'notifications:',
      '  hook:',
      '    webhook:',
      '      url: https://bot:pw@hooks.example.com/in',
      '      secret: ${HOOK_SECRET}',
    ]);
    const message = 'a password in a URL is a secret and must not be written in the policy; use "${ENV_VAR}" for the URL or its password';
    assert.deepEqual(problems(text, { HOOK_SECRET: 'x' }), [
      `p.yaml:3: prometheus.url: ${message}`,
      `p.yaml:7: notifications.hook.webhook.url: ${message}`,
      `p.yaml:16: services.web.signals.ready.http.url: ${message}`,
    ]);
  });

  it('accepts a written URL with a user and no password, and an @ outside the userinfo', () => {
    const policy = parse(policyWith(withReady('http://127.0.0.1:8000/ready?mail=a@b.c'), ['prometheus:', '  url: http://rollguard@prom:9090']));
    assert.equal(policy.prometheus?.url, 'http://rollguard@prom:9090');
  });

  it('refuses a query string in the Prometheus URL: /api/v1/… is appended to it', () => {
    assert.deepEqual(problems(policyWith(MINIMAL_WEB, ['prometheus:', '  url: ${PROM_URL}']), { PROM_URL: 'http://prom:9090?token=abc' }), [
      'p.yaml:3: prometheus.url: a query string or fragment cannot be used: rollguard appends /api/v1/… to this URL; give credentials in basic_auth or authorization (or as http://user:${PASSWORD}@host:9090)',
    ]);
  });
});
