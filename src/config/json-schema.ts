import { z } from 'zod';
import { policyFileSchema } from './schema.js';

/** A JSON Schema document or subschema, as plain JSON. */
export type JsonSchema = { [key: string]: unknown };

/**
 * The schema's `$id`: a name, not a location (editors find the schema through the policy's
 * `# yaml-language-server: $schema=` line), so it cannot point at a stale copy on some server.
 */
const POLICY_SCHEMA_ID = 'urn:rollguard:policy:v1';

/** `${VAR}` or `${VAR:-default}` as a whole value, the form that takes the value's type (see env-reference.ts). */
const ENV_REFERENCE: JsonSchema = {
  type: 'string',
  pattern: '^\\s*\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}\\s*$',
  description: '${VAR} or ${VAR:-default}: replaced from the environment when the policy is loaded (the default when VAR is unset or empty).',
};

/** Keys that say what a value may be; they move into the first branch when a `${VAR}` branch is added. */
const CONSTRAINT_KEYS = ['type', 'enum', 'format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'pattern', 'minLength', 'maxLength'];

/**
 * The policy file's JSON Schema (draft 2020-12) for editors, generated from the zod schema's
 * input side: durations are strings there, defaults are optional.
 *
 * Every subschema is inlined (no `$ref`): yaml-language-server has had bugs resolving `$ref`
 * against a root `$id`. Cross-field rules (exactly one threshold per rule, known signal names, secrets
 * not literal) live in zod only; `rollguard policy check` reports them.
 */
export function policyJsonSchema(): JsonSchema {
  const generated = z.toJSONSchema(policyFileSchema, {
    target: 'draft-2020-12',
    io: 'input',
    reused: 'inline',
    unrepresentable: 'throw',
  }) as JsonSchema;
  const { $schema, ...body } = generated;
  return {
    $schema,
    $id: POLICY_SCHEMA_ID,
    title: 'rollguard policy',
    description: 'What rollguard watches after each deployment and when it reverts to the known-good container. Validate with `rollguard policy check FILE`.',
    ...allowEnvReferences(body),
  };
}

/** The schema as `rollguard policy schema` prints it and config/rollguard.schema.json stores it. */
export function policyJsonSchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}

/**
 * `above: ${THRESHOLD}` is valid policy: a whole-value reference takes the variable's type when
 * loaded. An editor sees the string, so every number, boolean, enum or URL also accepts `${VAR}`.
 */
function allowEnvReferences(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...schema };
  if (isSchema(out.properties)) {
    out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, isSchema(v) ? allowEnvReferences(v) : v]));
  }
  if (isSchema(out.additionalProperties)) out.additionalProperties = allowEnvReferences(out.additionalProperties);
  if (isSchema(out.items)) out.items = allowEnvReferences(out.items);
  if (!needsEnvBranch(out)) return out;
  const constraint: JsonSchema = {};
  for (const key of CONSTRAINT_KEYS) {
    if (key in out) {
      constraint[key] = out[key];
      delete out[key];
    }
  }
  out.anyOf = [constraint, ENV_REFERENCE];
  return out;
}

function needsEnvBranch(schema: JsonSchema): boolean {
  if ('const' in schema || 'anyOf' in schema) return false;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.includes('string')) return 'enum' in schema || 'format' in schema;
  return types.some((t) => t === 'number' || t === 'integer' || t === 'boolean');
}

const isSchema = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v);
