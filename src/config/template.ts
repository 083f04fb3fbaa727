/** Values a PromQL template may reference as `{{name}}`. */
export const TEMPLATE_VARS = ['service', 'container', 'image', 'version'] as const;
export type TemplateVar = (typeof TEMPLATE_VARS)[number];
export type TemplateValues = Record<TemplateVar, string>;

/**
 * `{{range}}`: the range of a burn-rate window (`5m`, `1h`), written by rollguard itself from
 * validated durations, so it may stand outside quotes: `rate(errors[{{range}}])`.
 */
export const RANGE_VAR = 'range';

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
      } else if (!(TEMPLATE_VARS as readonly string[]).includes(name)) {
        problems.push(`unknown placeholder {{${name}}}; valid: ${TEMPLATE_VARS.map((v) => `{{${v}}}`).join(', ')}`);
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
    return Object.hasOwn(values, name) ? escapePromqlString(values[name as TemplateVar]) : whole;
  });
}

/** Whether a query is written for burn-rate windows. */
export function usesRange(query: string): boolean {
  return new RegExp(`\\{\\{\\s*${RANGE_VAR}\\s*\\}\\}`).test(query);
}
