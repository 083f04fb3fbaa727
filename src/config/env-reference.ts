import { parse as parseYaml } from 'yaml';

/**
 * `${VAR}` and `${VAR:-default}` in policy text. The default runs to the first `}`, so it may not
 * contain one. Global, so its `lastIndex` is state: use it with `replace` and `matchAll` only.
 */
const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** The same reference as the whole text: such a plain scalar takes the YAML type of its value. */
const WHOLE_ENV_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

type Env = Readonly<Record<string, string | undefined>>;

/** Whether `text` (trimmed) is a single reference and nothing else: `${THRESHOLD}`, `${THRESHOLD:-0.05}`. */
export function isWholeEnvReference(text: string): boolean {
  return WHOLE_ENV_REFERENCE.test(text.trim());
}

/**
 * Replaces every reference as POSIX sh does: `${VAR}` by VAR's value (empty if set empty),
 * `${VAR:-default}` by the default when VAR is unset or empty. A variable unset without a default
 * is handed to `onUnset` with the reference's offset in `text`, and its reference is left as written.
 */
export function expandEnv(text: string, env: Env, onUnset: (name: string, offset: number) => void): string {
  return text.replace(ENV_REFERENCE, (whole, name: string, fallback: string | undefined, offset: number) => {
    const value = env[name];
    if (fallback !== undefined) return value === undefined || value === '' ? fallback : value;
    if (value !== undefined) return value;
    onUnset(name, offset);
    return whole;
  });
}

/**
 * A whole-value reference's value with the type YAML gives it: `0.05` a number, `true` a boolean,
 * anything else the text itself. A default written in the policy may be any text (`[`, `*a`), so
 * what YAML cannot read stays text, for the schema to judge.
 */
export function yamlTyped(value: string): string | number | boolean {
  try {
    const typed: unknown = parseYaml(value, { logLevel: 'silent' });
    return typeof typed === 'number' || typeof typed === 'boolean' ? typed : value;
  } catch {
    return value;
  }
}

/** Whether some reference in `text` has a default that is not empty: text the policy file itself supplies. */
export function hasEnvDefault(text: string): boolean {
  return [...text.matchAll(ENV_REFERENCE)].some(([, , fallback]) => fallback !== undefined && fallback !== '');
}

/**
 * `text` with every default used and every other reference empty: what the policy file alone
 * writes there, whatever the environment holds.
 */
export function policyWrittenText(text: string): string {
  return text.replace(ENV_REFERENCE, (_whole, _name: string, fallback: string | undefined) => fallback ?? '');
}

/** `scheme://user:password@`, capturing the password. */
const URL_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:([^/?#]*)@/i;

/**
 * Whether the defaults in `text`, a secret's value as written, would put the secret in the policy
 * file: any default that is not empty, or for a URL (`url: true`) a default that makes up a
 * password — `${PROM_URL:-http://prometheus:9090}` is fine, `http://rg:${PW:-hunter2}@prom` is not.
 * Judged from the text alone, whether or not the variable is set: the default is in the file either way.
 */
export function defaultWritesSecret(text: string, url: boolean): boolean {
  if (!hasEnvDefault(text)) return false;
  return !url || (URL_PASSWORD.exec(policyWrittenText(text))?.[1] ?? '') !== '';
}
