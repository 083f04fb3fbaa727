/** Values a PromQL template may reference as `{{name}}`, for every kind of service. */
export const TEMPLATE_VARS = ['service', 'container', 'image', 'version'] as const;
export type TemplateVar = (typeof TEMPLATE_VARS)[number];

/**
 * Values of one replica of a Swarm service (`{{task}}` its task ID, `{{slot}}` its slot,
 * `{{node}}` its node's host name, `{{node_addr}}` its node's address). A signal that uses one is
 * measured once per replica, and the worst replica's value is the sample.
 */
export const REPLICA_VARS = ['task', 'slot', 'node', 'node_addr'] as const;
export type ReplicaVar = (typeof REPLICA_VARS)[number];

export type TemplateValues = Record<TemplateVar, string> & Partial<Record<ReplicaVar, string>>;

/** Every placeholder a query or URL may use. */
const ALL_VARS: readonly string[] = [...TEMPLATE_VARS, ...REPLICA_VARS];

/**
 * `{{range}}`: the range of a burn-rate window (`5m`, `1h`), written by rollguard itself from
 * validated durations, so it may stand outside quotes: `rate(errors[{{range}}])`.
 */
export const RANGE_VAR = 'range';

/** Global, so its `lastIndex` is state: functions that iterate it with `matchAll` take a copy. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/**
 * Escapes a value for use inside a double-quoted PromQL string, so that a hostile
 * label value (`web"} or vector(1) #`) stays a string and cannot change the query.
 */
export function escapePromqlString(value: string): string {
  return value.replace(/[\\"\n\r\t]/g, (ch) => {
    switch (ch) {
      case '\\': return '\\\\';
      case '"': return '\\"';
      case '\n': return '\\n';
      case '\r': return '\\r';
      default: return '\\t';
    }
  });
}

/**
 * Lists problems with a query template: unknown placeholders and placeholders that are
 * not inside a double-quoted string (only there is the escaping above sufficient).
 */
export function checkTemplate(query: string): string[] {
  const problems: string[] = [];
  let quote: string | undefined;
  for (let i = 0; i < query.length; i++) {
    const ch = query[i];
    if (quote) {
      if (ch === '\\') { i++; continue; }
      if (ch === quote) { quote = undefined; continue; }
    } else if (ch === '"' || ch === "'" || ch === '`') {
      quote = ch;
      continue;
    }
    if (ch === '{' && query[i + 1] === '{') {
      PLACEHOLDER.lastIndex = i;
      const match = PLACEHOLDER.exec(query);
      if (!match || match.index !== i) continue;
      const name = match[1] as string;
      if (name === RANGE_VAR) {
        if (quote) problems.push(`{{${RANGE_VAR}}} is a range such as 5m and stands outside quotes, e.g. rate(x[{{${RANGE_VAR}}}])`);
      } else if (!ALL_VARS.includes(name)) {
        problems.push(`unknown placeholder {{${name}}}; valid: ${ALL_VARS.map((v) => `{{${v}}}`).join(', ')}`);
      } else if (quote !== '"') {
        problems.push(`{{${name}}} must stand inside a double-quoted label value, e.g. service="{{${name}}}"`);
      }
      i += match[0].length - 1;
    }
  }
  return problems;
}

/** Substitutes `{{var}}` placeholders with PromQL-escaped values; `{{range}}` with `range` when given. */
export function renderTemplate(query: string, values: TemplateValues, range?: string): string {
  return query.replace(PLACEHOLDER, (whole, name: string) => {
    if (name === RANGE_VAR) return range ?? whole;
    const value = Object.hasOwn(values, name) ? values[name as TemplateVar | ReplicaVar] : undefined;
    return value === undefined ? whole : escapePromqlString(value);
  });
}

/** The per-replica placeholders a query or URL uses (see REPLICA_VARS). */
export function replicaVarsIn(text: string): ReplicaVar[] {
  const found = new Set<ReplicaVar>();
  for (const m of text.matchAll(new RegExp(PLACEHOLDER))) if ((REPLICA_VARS as readonly string[]).includes(m[1] as string)) found.add(m[1] as ReplicaVar);
  return [...found];
}

/** Problems with an HTTP check's URL template: unknown placeholders, or a URL that is not one once they are filled in. */
export function checkUrlTemplate(url: string): string[] {
  const unknown = [...url.matchAll(new RegExp(PLACEHOLDER))].map((m) => m[1] as string).filter((n) => !ALL_VARS.includes(n));
  if (unknown.length) return unknown.map((n) => `unknown placeholder {{${n}}}; valid: ${ALL_VARS.map((v) => `{{${v}}}`).join(', ')}`);
  const sample = renderUrl(url, { service: 'web', container: 'web', image: 'web:1', version: '1', task: 'task', slot: '1', node: 'node', node_addr: '127.0.0.1' });
  let parsed: URL;
  try {
    parsed = new URL(sample);
  } catch {
    return ['expected an http:// or https:// URL (placeholders such as {{slot}} may stand in the host, port or path)'];
  }
  return /^https?:$/.test(parsed.protocol) ? [] : ['expected an http:// or https:// URL'];
}

/**
 * Fills an HTTP check's URL: `{{slot}}` and `{{node_addr}}` go in as they are (a port digit, an
 * address), every other value percent-encoded so it cannot change the URL's shape.
 */
export function renderUrl(url: string, values: TemplateValues): string {
  return url.replace(PLACEHOLDER, (whole, name: string) => {
    const value = Object.hasOwn(values, name) ? values[name as TemplateVar | ReplicaVar] : undefined;
    if (value === undefined) return whole;
    return name === 'slot' || name === 'node_addr' ? value : encodeURIComponent(value);
  });
}

/** Whether a query is written for burn-rate windows. */
export function usesRange(query: string): boolean {
  return new RegExp(`\\{\\{\\s*${RANGE_VAR}\\s*\\}\\}`).test(query);
}
