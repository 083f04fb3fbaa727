import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError } from './errors.js';
import { parsePolicy } from './load-policy.js';

const EXAMPLE = readFileSync(new URL('../../config/policy.example.yaml', import.meta.url), 'utf8');
const RUNS = Number(process.env.ROLLGUARD_PROPERTY_RUNS ?? 10_000);

/** A loader outcome is a policy or a ConfigError whose every line reads `file[:line]: …`; nothing else. */
function judged(text: string): 'ok' | 'refused' {
  try {
    parsePolicy(text, 'p.yaml', { PROMETHEUS_URL: 'http://127.0.0.1:9090', SECRET: 'x' });
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.ok(err.problems.length > 0);
    for (const line of err.message.split('\n')) assert.match(line, /^p\.yaml(:\d+)?: \S/, line);
    return 'refused';
  }
}

/** Arbitrary YAML-ish values, including the shapes the schema expects and breaks them. */
const leaf = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('10m', '500ms', '-1s', '${SECRET}', '${UNSET}', '{{service}}', 'rollback', 'P0'));
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 12 }), tie('node'), { maxKeys: 4 })),
})).node;

describe('policy loader under generated input', () => {
  it(`${RUNS} random documents: a policy or line-numbered problems, never a crash`, () => {
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (text) => { judged(text); }), { numRuns: RUNS });
    fc.assert(fc.property(value, (doc) => { judged(stringify(doc)); }), { numRuns: RUNS });
  });

  it('mutating one value of the example policy never crashes, and a refused file applies nothing', () => {
    const lines = EXAMPLE.split('\n');
    const valueLines = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*[\w.-]+:\s+\S/.test(l) && !l.trim().startsWith('#'));
    fc.assert(
      fc.property(fc.constantFrom(...valueLines), leaf, ([line, index], replacement) => {
        const key = line.slice(0, line.indexOf(':') + 1);
        const mutated = [...lines];
        mutated[index] = `${key} ${JSON.stringify(replacement)}`;
        judged(mutated.join('\n'));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('policy loader: problems the YAML library raises late', () => {
  it('an alias without its anchor is a refused file with its line, not a crash', () => {
    assert.throws(() => parsePolicy('version: 1\nservices: *nowhere\n', 'p.yaml', {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^p\.yaml:2: Unresolved alias/);
      return true;
    });
  });

  it('an alias explosion is refused', () => {
    const bomb = ['version: 1', 'a: &a [x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    assert.throws(() => parsePolicy(bomb, 'p.yaml', {}), ConfigError);
  });
});
