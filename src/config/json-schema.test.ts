import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { policyJsonSchema, policyJsonSchemaText, type JsonSchema } from './json-schema.js';

const REGENERATE = 'npx rollguard policy schema > config/rollguard.schema.json';
const schemaFile = new URL('../../config/rollguard.schema.json', import.meta.url);
const exampleFile = new URL('../../config/policy.example.yaml', import.meta.url);

const isSchema = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON pointers at which `a` and `b` differ. */
function differences(a: unknown, b: unknown, at = ''): string[] {
  if (isSchema(a) && isSchema(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differences(a[k], b[k], `${at}/${k}`));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.flatMap((v, i) => differences(v, b[i], `${at}/${i}`));
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '/'];
}

/** Every schema an operator's key can land on: named properties, record values and list items. */
function* keySchemas(schema: JsonSchema, at = '#'): Generator<{ at: string; schema: JsonSchema; named: boolean }> {
  if (isSchema(schema.properties)) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      if (!isSchema(sub)) continue;
      yield { at: `${at}/properties/${key}`, schema: sub, named: true };
      yield* keySchemas(sub, `${at}/properties/${key}`);
    }
  }
  for (const kind of ['additionalProperties', 'items'] as const) {
    const sub = schema[kind];
    if (!isSchema(sub)) continue;
    yield { at: `${at}/${kind}`, schema: sub, named: false };
    yield* keySchemas(sub, `${at}/${kind}`);
  }
}

const typeOf = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v === 'object' ? 'object' : typeof v;

/**
 * The structural part of JSON Schema the generated schema uses: type, enum, const, pattern,
 * properties, additionalProperties, propertyNames.pattern, required, items, anyOf. Returns `path: problem` lines.
 */
function structuralProblems(schema: JsonSchema, value: unknown, at = ''): string[] {
  if (Array.isArray(schema.anyOf)) {
    const branches = schema.anyOf.filter(isSchema).map((branch) => structuralProblems({ ...schema, anyOf: undefined, ...branch }, value, at));
    return branches.some((p) => p.length === 0) ? [] : (branches[0] ?? [`${at}: no branch of anyOf`]);
  }
  const where = at || '/';
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const actual = typeOf(value);
  if (types.length && !types.includes(actual) && !(actual === 'integer' && types.includes('number'))) return [`${where}: expected ${types.join('|')}, got ${actual}`];
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) return [`${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`];
  if ('const' in schema && schema.const !== value) return [`${where}: expected ${JSON.stringify(schema.const)}`];
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return [`${where}: does not match ${schema.pattern}`];
  const problems: string[] = [];
  if (isSchema(value)) {
    const properties = isSchema(schema.properties) ? schema.properties : {};
    for (const key of Array.isArray(schema.required) ? schema.required : []) {
      if (!(String(key) in value)) problems.push(`${at}/${String(key)}: required`);
    }
    for (const [key, sub] of Object.entries(value)) {
      const named = properties[key];
      if (isSchema(named)) {
        problems.push(...structuralProblems(named, sub, `${at}/${key}`));
        continue;
      }
      if (!isSchema(schema.additionalProperties)) {
        problems.push(`${at}/${key}: unknown key`);
        continue;
      }
      const names = isSchema(schema.propertyNames) && typeof schema.propertyNames.pattern === 'string' ? new RegExp(schema.propertyNames.pattern) : undefined;
      if (names && !names.test(key)) problems.push(`${at}/${key}: name does not match ${names.source}`);
      problems.push(...structuralProblems(schema.additionalProperties, sub, `${at}/${key}`));
    }
  }
  if (Array.isArray(value) && isSchema(schema.items)) {
    const items = schema.items;
    value.forEach((item, i) => problems.push(...structuralProblems(items, item, `${at}/${i}`)));
  }
  return problems;
}

describe('policyJsonSchema()', () => {
  const schema = policyJsonSchema();

  it('matches config/rollguard.schema.json (regenerate it after changing the zod schema)', () => {
    const committed: unknown = JSON.parse(readFileSync(schemaFile, 'utf8'));
    const drift = differences(committed, schema);
    assert.ok(
      drift.length === 0,
      `config/rollguard.schema.json is out of date with src/config/schema.ts at ${drift.slice(0, 10).join(', ')}` +
        `${drift.length > 10 ? ` and ${drift.length - 10} more` : ''}.\nRun \`npm run -s build && ${REGENERATE}\` and commit the result.`,
    );
    assert.equal(readFileSync(schemaFile, 'utf8'), policyJsonSchemaText(), `config/rollguard.schema.json is not formatted as generated; run \`${REGENERATE}\``);
  });

  it('is a draft 2020-12 schema with an $id and a title, and uses no $ref (editors mis-resolve $ref against $id)', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(typeof schema.$id, 'string');
    assert.equal(typeof schema.title, 'string');
    assert.doesNotMatch(JSON.stringify(schema), /"\$ref"/);
  });

  it('describes every key an operator writes, and every service, signal, channel, rule and recovery check', () => {
    const missing = [...keySchemas(schema)]
      .filter(({ schema: s, named }) => (named || s.type === 'object') && typeof s.description !== 'string')
      .map(({ at }) => at);
    assert.deepEqual(missing, [], `add .describe(...) in src/config/schema.ts or notify-schema.ts for: ${missing.join(', ')}`);
  });

  it('takes durations as strings, the way the file writes them', () => {
    const defaults = (schema.properties as Record<string, JsonSchema>).defaults as JsonSchema;
    const window = (defaults.properties as Record<string, JsonSchema>).window as JsonSchema;
    assert.equal(window.type, 'string');
  });

  it('accepts ${VAR} where a number, boolean, enum or URL is expected, as the loader does', () => {
    const rule = { name: 'r', signal: 's', above: '${THRESHOLD}', severity: '${SEVERITY}', for: 3 };
    const doc = {
      version: 1,
      prometheus: { url: '${PROMETHEUS_URL}' },
      services: { web: { match: { container: 'web' }, signals: { s: { container: 'running' } }, rules: [rule] } },
    };
    assert.deepEqual(structuralProblems(schema, doc), []);
    assert.deepEqual(structuralProblems(schema, { ...doc, services: { web: { ...doc.services.web, rules: [{ ...rule, above: 'lots' }] } } }), [
      '/services/web/rules/0/above: expected number, got string',
    ]);
  });

  it('accepts config/policy.example.yaml: every key known, every value of the right type', () => {
    const example: unknown = parseYaml(readFileSync(exampleFile, 'utf8'));
    assert.deepEqual(structuralProblems(schema, example), []);
  });

  it('rejects a misspelt key, so the example check above is not vacuous', () => {
    const example = parseYaml(readFileSync(exampleFile, 'utf8')) as { services: { web: Record<string, unknown> } };
    example.services.web.windw = '5m';
    assert.deepEqual(structuralProblems(schema, example), ['/services/web/windw: unknown key']);
  });

  it('is named by config/policy.example.yaml for editors on its first line', () => {
    const first = readFileSync(exampleFile, 'utf8').split('\n')[0];
    assert.equal(first, '# yaml-language-server: $schema=./rollguard.schema.json');
  });
});
