import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, formatProblem } from './errors.js';
import { loadPolicy } from './load-policy.js';
import type { Policy } from './policy.js';

// Policies of Swarm services, read from files as the daemon reads them: the match forms
// swarm_service and stack, and the per-task placeholders ({{task}} {{slot}} {{node}} {{node_addr}})
// allowed only for Swarm services and refused where a rule reads a signal over a range of its own.

let dir: string;
let files = 0;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rollguard-swarm-policy-'));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * A policy file with one service `web` matched by `match` (one line, e.g. `swarm_service: web`)
 * whose signals and rules are `service` (indent 4). Line 7 is the match; the service's lines
 * start at line 8.
 */
function policyText(match: string, service: string[]): string {
  return [
    'version: 1', //                    1
    'prometheus:', //                   2
    '  url: http://127.0.0.1:9090', //  3
    'services:', //                     4
    '  web:', //                        5
    '    match:', //                    6
    `      ${match}`, //                7
    ...service,
  ].join('\n') + '\n';
}

async function write(text: string): Promise<string> {
  const file = path.join(dir, `policy-${++files}.yaml`);
  await writeFile(file, text);
  return file;
}

async function load(match: string, service: string[]): Promise<Policy> {
  return loadPolicy(await write(policyText(match, service)), {});
}

/** The problems of a policy that must be refused, as `file:line: key: message` with the file named `policy.yaml`. */
async function problems(match: string, service: string[]): Promise<string[]> {
  const file = await write(policyText(match, service));
  try {
    await loadPolicy(file, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.problems.map((p) => formatProblem({ ...p, file: p.file === file ? 'policy.yaml' : p.file }));
  }
  assert.fail('the policy was accepted');
}

/** A readiness check per task (line 10) read by one rule (lines 11-14). */
const READY_PER_TASK = [
  '    signals:', //                                           8
  '      ready:', //                                           9
  '        http: {url: "http://127.0.0.1:808{{slot}}/ready"}', // 10
  '    rules:', //                                             11
  '      - name: not ready', //                                12
  '        signal: ready', //                                  13
  '        below: 1', //                                       14
];


const VALID = '{{service}}, {{container}}, {{image}}, {{version}}, {{task}}, {{slot}}, {{node}}, {{node_addr}}';
const ONLY_SWARM = 'known only for the tasks of a Swarm service (match: swarm_service or stack)';
const PER_TASK = 'cannot read a signal measured once per task (it uses {{task}}, {{slot}}, {{node}} or {{node_addr}}); use a query over the whole service';

describe('loadPolicy: Swarm service matches', () => {
  it('match {swarm_service: web} is a swarm match of the service web', async () => {
    assert.deepEqual((await load('swarm_service: web', READY_PER_TASK)).services.web?.match, { kind: 'swarm', service: 'web' });
  });

  it('match {stack: {name: shop, service: web}} is a swarm match of shop_web in the stack shop', async () => {
    assert.deepEqual((await load('stack: {name: shop, service: web}', READY_PER_TASK)).services.web?.match, { kind: 'swarm', service: 'shop_web', stack: 'shop' });
  });

  it('refuses swarm_service beside another form of match', async () => {
    const lines = ['    match:', '      swarm_service: web', '      container: web'];
    const text = policyText('swarm_service: web', READY_PER_TASK).replace('    match:\n      swarm_service: web\n', `${lines.join('\n')}\n`);
    const file = await write(text);
    await assert.rejects(loadPolicy(file, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => formatProblem({ ...p, file: 'policy.yaml' })), [
        'policy.yaml:6: services.web.match: set exactly one of container, compose, labels, swarm_service, stack or git',
      ]);
      return true;
    });
  });

  it('refuses a stack without its service, naming the missing key', async () => {
    assert.deepEqual(await problems('stack: {name: shop}', READY_PER_TASK), ['policy.yaml:7: services.web.match.stack.service: required']);
  });
});

describe('loadPolicy: per-task placeholders', () => {
  it('accepts http://127.0.0.1:808{{slot}}/ready for a Swarm service, keeping the placeholder for each task', async () => {
    const ready = (await load('swarm_service: web', READY_PER_TASK)).services.web?.signals.ready;
    assert.equal(ready?.kind === 'http' && ready.url, 'http://127.0.0.1:808{{slot}}/ready');
  });

  it('accepts {{node_addr}} in the host and per-task placeholders in a query of a stack\'s service', async () => {
    const service = [
      '    signals:',
      '      ready:',
      '        http: {url: "http://{{node_addr}}:8080/ready"}',
      '      errors:',
      '        prometheus: \'sum(rate(errors{task="{{task}}", node="{{node}}", slot="{{slot}}"}[1m]))\'',
      '    rules:',
      '      - {name: not ready, signal: ready, below: 1}',
      '      - {name: errors, signal: errors, above: 0.05}',
    ];
    const policy = await load('stack: {name: shop, service: web}', service);
    assert.deepEqual(Object.keys(policy.services.web?.signals ?? {}), ['ready', 'errors']);
  });

  it('refuses {{slot}} in the URL of a service matched by container, naming the line and key', async () => {
    assert.deepEqual(await problems('container: web', READY_PER_TASK), [`policy.yaml:10: services.web.signals.ready.http: {{slot}} is ${ONLY_SWARM}`]);
  });

  it('refuses per-task placeholders in a query of a Compose service, naming every one', async () => {
    const service = [
      '    signals:', //                                                                   8
      '      errors:', //                                                                  9
      '        prometheus: \'sum(rate(errors{task="{{task}}", addr="{{node_addr}}"}[1m]))\'', // 10
      '    rules:',
      '      - {name: errors, signal: errors, above: 0.05}',
    ];
    assert.deepEqual(await problems('compose: {project: shop, service: web}', service), [`policy.yaml:10: services.web.signals.errors.prometheus: {{task}}, {{node_addr}} are ${ONLY_SWARM}`]);
  });

  it('refuses an unknown placeholder in a URL, listing the valid ones', async () => {
    const service = READY_PER_TASK.map((l) => l.replace('808{{slot}}/ready', '8080/{{shard}}/ready'));
    assert.deepEqual(await problems('swarm_service: web', service), [`policy.yaml:10: services.web.signals.ready.http.url: unknown placeholder {{shard}}; valid: ${VALID}`]);
  });

  it('refuses a URL that is none once its placeholders are filled', async () => {
    const service = READY_PER_TASK.map((l) => l.replace('http://127.0.0.1:808{{slot}}/ready', '{{node}}:8080/ready'));
    assert.deepEqual(await problems('swarm_service: web', service), [
      'policy.yaml:10: services.web.signals.ready.http.url: expected an http:// or https:// URL',
    ]);
  });
});

describe('loadPolicy: rules that read a per-task signal over a range of their own', () => {
  /** A per-task error ratio (line 10) and one rule over it whose threshold is `rule` (lines 13-…). */
  const ruleOver = (query: string, rule: string[]): string[] => [
    '    signals:', //                       8
    '      errors:', //                      9
    `        prometheus: '${query}'`, //     10
    '    rules:', //                         11
    '      - name: errors', //               12
    '        signal: errors', //             13
    ...rule, //                              14…
  ];
  const PER_TASK_RATIO = 'sum(rate(errors{slot="{{slot}}"}[5m])) / sum(rate(requests{slot="{{slot}}"}[5m]))';
  const PER_TASK_RANGE = 'sum(rate(errors{slot="{{slot}}"}[{{range}}])) / sum(rate(requests{slot="{{slot}}"}[{{range}}]))';

  const refused: [what: string, query: string, rule: string[], problem: string][] = [
    ['burn_rate', PER_TASK_RANGE, ['        burn_rate: {slo: 0.999, windows: [[5m, 1h, 14.4]]}'], `policy.yaml:14: services.web.rules[0].burn_rate: burn_rate ${PER_TASK}`],
    ['above_baseline', PER_TASK_RATIO, ['        above_baseline: 1.5', '        min_threshold: 0.01'], `policy.yaml:14: services.web.rules[0].above_baseline: above_baseline ${PER_TASK}`],
    ['above_baseline_by', PER_TASK_RATIO, ['        above_baseline_by: 0.02'], `policy.yaml:14: services.web.rules[0].above_baseline_by: above_baseline_by ${PER_TASK}`],
    ['min_series', PER_TASK_RATIO, ['        above: 0.05', '        min_series: 2'], `policy.yaml:15: services.web.rules[0].min_series: min_series ${PER_TASK}`],
  ];
  for (const [what, query, rule, problem] of refused) {
    it(`refuses ${/^[aeiou]/.test(what) ? 'an' : 'a'} ${what} rule on a per-task signal, naming the rule's key`, async () => {
      assert.deepEqual(await problems('swarm_service: web', ruleOver(query, rule)), [problem]);
    });
  }

  it('accepts a burn_rate rule on a query over the whole Swarm service', async () => {
    const query = 'sum(rate(errors{service="{{service}}"}[{{range}}])) / sum(rate(requests{service="{{service}}"}[{{range}}]))';
    const rule = (await load('swarm_service: web', ruleOver(query, ['        burn_rate: {slo: 0.999, windows: [[5m, 1h, 14.4]]}']))).services.web?.rules[0];
    assert.deepEqual(rule?.burnRate, { slo: 0.999, windows: [{ shortMs: 300_000, longMs: 3_600_000, factor: 14.4 }] });
  });

  it('accepts a plain threshold on a per-task signal', async () => {
    const rule = (await load('swarm_service: web', ruleOver(PER_TASK_RATIO, ['        above: 0.05']))).services.web?.rules[0];
    assert.equal(rule?.above, 0.05);
  });
});
