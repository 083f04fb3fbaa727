/**
 * Rewrites a per-service PromQL template into one query for many services.
 *
 * A template such as
 *   sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[1m])) / sum(rate(http_requests_total{service="{{service}}"}[1m]))
 * becomes
 *   sum by (service) (rate(http_requests_total{service=~"a|b|c",code=~"5.."}[1m])) / sum by (service) (rate(http_requests_total{service=~"a|b|c"}[1m]))
 * whose result is split back by the `service` label. The rewrite is allow-listed: it is done only
 * when every part of the query is known to keep the per-service series apart, so that each
 * service's part of the batched result is exactly what its own query returns at the same time.
 * Anything else (a selector without the placeholder matcher, `vector()`, `scalar()`,
 * `label_replace`, `topk`, `group_left`, `ignoring(service)`, …) is refused with a reason, and
 * the caller queries per service.
 */
import { escapePromqlString, RANGE_VAR, TEMPLATE_VARS, type TemplateVar } from '../config/template.js';

/** A batchable template: `render(values)` gives the query for those template values, split by `label`. */
export interface BatchPlan {
  kind: 'batch';
  /** The label every series of the result carries, equal to the member's template value. */
  label: string;
  /** The template variable whose values are batched. */
  variable: TemplateVar;
  /** The batched query for these values (regex-escaped, PromQL-escaped, sorted and deduplicated). */
  render(values: readonly string[]): string;
}

/** A template that is not batched, and why (for the debug log and the fallback metric). */
export interface NoBatch {
  kind: 'single';
  reason: string;
}

type Tok = { t: 'id' | 'str' | 'num' | 'op' | '(' | ')' | '{' | '}' | '[' | ']' | ',' | ':' | '@'; s: number; e: number; v: string };

const AGGREGATIONS = new Set(['sum', 'avg', 'min', 'max', 'count', 'stddev', 'stdvar', 'group', 'quantile']);
/** Aggregations whose output is not one series per group, or that take a label name argument. */
const UNSAFE_AGGREGATIONS = new Set(['topk', 'bottomk', 'count_values', 'limitk', 'limit_ratio']);
/** Functions that keep each input series' labels (or drop only the metric name). */
const SAFE_FUNCTIONS = new Set([
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'changes', 'resets',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'quantile_over_time',
  'stddev_over_time', 'stdvar_over_time', 'last_over_time', 'present_over_time', 'mad_over_time',
  'histogram_quantile', 'histogram_count', 'histogram_sum', 'histogram_avg', 'histogram_fraction', 'histogram_stddev', 'histogram_stdvar',
  'abs', 'ceil', 'floor', 'round', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'sgn', 'clamp', 'clamp_min', 'clamp_max',
  'sort', 'sort_desc', 'timestamp', 'holt_winters', 'double_exponential_smoothing',
]);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2']);
const PLACEHOLDER = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

function tokenize(q: string): Tok[] | string {
  const out: Tok[] = [];
  let i = 0;
  while (i < q.length) {
    const ch = q[i] as string;
    if (/\s/.test(ch)) { i++; continue; }
    if (ch === '#') { while (i < q.length && q[i] !== '\n') i++; continue; }
    const s = i;
    if (ch === '"' || ch === "'" || ch === '`') {
      i++;
      while (i < q.length && q[i] !== ch) i += q[i] === '\\' && ch !== '`' ? 2 : 1;
      if (i >= q.length) return 'unterminated string';
      i++;
      out.push({ t: 'str', s, e: i, v: q.slice(s, i) });
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      while (i < q.length && /[A-Za-z0-9_:.]/.test(q[i] as string)) i++;
      out.push({ t: 'id', s, e: i, v: q.slice(s, i) });
      continue;
    }
    if (/[0-9.]/.test(ch)) {
      while (i < q.length && /[0-9A-Za-z_.+-]/.test(q[i] as string) && !((q[i] === '+' || q[i] === '-') && !/[eE]/.test(q[i - 1] as string))) i++;
      out.push({ t: 'num', s, e: i, v: q.slice(s, i) });
      continue;
    }
    if ('(){}[],:@'.includes(ch)) {
      i++;
      out.push({ t: ch as Tok['t'], s, e: i, v: ch });
      continue;
    }
    const two = q.slice(i, i + 2);
    if (['==', '!=', '>=', '<=', '=~', '!~'].includes(two)) {
      i += 2;
      out.push({ t: 'op', s, e: i, v: two });
      continue;
    }
    if ('+-*/%^<>='.includes(ch)) {
      i++;
      out.push({ t: 'op', s, e: i, v: ch });
      continue;
    }
    return `unexpected character ${JSON.stringify(ch)}`;
  }
  return out;
}

/** Index of the token closing the bracket opened at `open`, or -1. */
function closing(toks: Tok[], open: number): number {
  const pairs: Record<string, string> = { '(': ')', '{': '}', '[': ']' };
  const stack: string[] = [];
  for (let k = open; k < toks.length; k++) {
    const t = (toks[k] as Tok).t;
    if (t in pairs) stack.push(pairs[t] as string);
    else if (t === ')' || t === '}' || t === ']') {
      if (stack.pop() !== t) return -1;
      if (!stack.length) return k;
    }
  }
  return -1;
}

/** The label names of a grouping list `( a, b )` starting at `open`; undefined when malformed. */
function labelList(toks: Tok[], open: number): { names: string[]; close: number } | undefined {
  if (toks[open]?.t !== '(') return undefined;
  const close = closing(toks, open);
  if (close < 0) return undefined;
  const names: string[] = [];
  for (let k = open + 1; k < close; k++) {
    const t = toks[k] as Tok;
    if (t.t === 'id') names.push(t.v);
    else if (t.t !== ',') return undefined;
  }
  return { names, close };
}

/**
 * Plans the batching of `template` (with `{{range}}` already rendered). Returns a plan, or the
 * reason it cannot be batched safely.
 */
export function planBatch(template: string): BatchPlan | NoBatch {
  const no = (reason: string): NoBatch => ({ kind: 'single', reason });
  const toks = tokenize(template);
  if (typeof toks === 'string') return no(toks);
  type Edit = { at: number; text: string; end?: number };
  const edits: Edit[] = [];
  let label: string | undefined;
  let variable: TemplateVar | undefined;
  let selectors = 0;

  // 1. Selectors: every {…} must carry exactly one `label="{{var}}"` matcher; no other string holds a placeholder.
  const braces: [number, number][] = [];
  for (let k = 0; k < toks.length; k++) {
    if ((toks[k] as Tok).t !== '{') continue;
    const close = closing(toks, k);
    if (close < 0) return no('unbalanced braces');
    braces.push([k, close]);
    let found = 0;
    for (let m = k + 1; m < close; m += 4) {
      const [name, op, value, sep] = [toks[m], toks[m + 1], toks[m + 2], toks[m + 3]];
      if (name?.t !== 'id' || op?.t !== 'op' || value?.t !== 'str' || (m + 3 < close && sep?.t !== ',')) {
        // A trailing comma is allowed.
        if (name?.t === ',' && m + 1 === close) break;
        return no('a label matcher the batcher does not understand');
      }
      const inner = value.v.slice(1, -1);
      if (!inner.includes('{{')) continue;
      const ph = PLACEHOLDER.exec(inner);
      if (!ph || value.v[0] !== '"' || op.v !== '=') return no('a placeholder that is not a whole `label="{{var}}"` value');
      const v = ph[1] as string;
      if (v === RANGE_VAR || !(TEMPLATE_VARS as readonly string[]).includes(v)) return no(`placeholder {{${v}}} is not batched`);
      if ((variable && variable !== v) || (label && label !== name.v)) return no('more than one placeholder label');
      variable = v as TemplateVar;
      label = name.v;
      found++;
      edits.push({ at: op.s, end: value.e, text: '=~\u0000' });
    }
    if (found !== 1) return no(found ? 'a selector with the placeholder twice' : 'a selector without the placeholder matcher');
    selectors++;
    k = close;
  }
  if (!label || !variable) return no('no `label="{{var}}"` placeholder');
  const inBrace = (k: number): boolean => braces.some(([a, b]) => k > a && k < b);
  const L = label;

  // 2. Everything outside the matchers: allow-listed functions and aggregations, with the label kept.
  for (let k = 0; k < toks.length; k++) {
    if (inBrace(k)) continue;
    const t = toks[k] as Tok;
    if (t.t === 'str') return no('a string argument (label_replace, count_values, …)');
    if (t.t === '@') return no('the @ modifier');
    if (t.t === '[') {
      const close = closing(toks, k);
      if (close < 0) return no('unbalanced brackets');
      k = close; // a range or subquery resolution: durations only
      continue;
    }
    if (t.t !== 'id') continue;
    const next = toks[k + 1];
    const word = t.v;
    if (UNSAFE_AGGREGATIONS.has(word)) return no(`${word}() is not batched`);
    if (AGGREGATIONS.has(word)) {
      // sum by (x) (…), sum (…) by (x), or sum (…)
      let modIdx: number | undefined;
      let bodyOpen: number;
      if (next?.t === 'id' && (next.v === 'by' || next.v === 'without')) {
        modIdx = k + 1;
        const list = labelList(toks, k + 2);
        if (!list) return no(`a malformed grouping of ${word}`);
        bodyOpen = list.close + 1;
      } else {
        bodyOpen = k + 1;
      }
      if (toks[bodyOpen]?.t !== '(') return no(`${word} used as a metric name`);
      const bodyClose = closing(toks, bodyOpen);
      if (bodyClose < 0) return no('unbalanced parentheses');
      const after = toks[bodyClose + 1];
      if (modIdx === undefined && after?.t === 'id' && (after.v === 'by' || after.v === 'without')) modIdx = bodyClose + 1;
      if (modIdx === undefined) {
        edits.push({ at: t.e, text: ` by (${L})` });
      } else {
        const mod = toks[modIdx] as Tok;
        const list = labelList(toks, modIdx + 1);
        if (!list) return no(`a malformed grouping of ${word}`);
        if (mod.v === 'without') {
          if (list.names.includes(L)) return no(`${word} without (${L}) merges services`);
        } else if (!list.names.includes(L)) {
          edits.push({ at: (toks[list.close] as Tok).s, text: list.names.length ? `, ${L}` : L });
        }
      }
      continue;
    }
    if (next?.t === '(' && !KEYWORDS.has(word)) {
      if (!SAFE_FUNCTIONS.has(word)) return no(`${word}() is not batched`);
      continue;
    }
    if (word === 'group_left' || word === 'group_right') return no(`${word} is not batched`);
    if (word === 'on' || word === 'ignoring') {
      const list = labelList(toks, k + 1);
      if (!list) return no(`a malformed ${word}()`);
      if (word === 'ignoring' && list.names.includes(L)) return no(`ignoring(${L}) merges services`);
      if (word === 'on' && !list.names.includes(L)) edits.push({ at: (toks[list.close] as Tok).s, text: list.names.length ? `, ${L}` : L });
      k = list.close;
      continue;
    }
    if (word === 'by' || word === 'without') {
      const list = labelList(toks, k + 1); // handled with its aggregation
      if (list) k = list.close;
      continue;
    }
    if (word === 'offset') { k++; continue; }
    if (KEYWORDS.has(word)) continue;
    if (/^(inf|nan)$/i.test(word)) continue;
    // A metric name: its selector must be the next brace (checked above for the matcher).
    if (next?.t !== '{') return no(`selector ${word} without the placeholder matcher`);
  }
  if (!selectors) return no('no selector');

  const sorted = [...edits].sort((a, b) => b.at - a.at);
  return {
    kind: 'batch',
    label: L,
    variable,
    render(values: readonly string[]): string {
      const alternatives = [...new Set(values)].sort().map(regexEscape).join('|');
      const matcher = `"${escapePromqlString(alternatives)}"`;
      let q = template;
      for (const e of sorted) q = q.slice(0, e.at) + e.text.replace('\u0000', matcher) + q.slice(e.end ?? e.at);
      return q;
    },
  };
}

/** Escapes a literal for an RE2 regular expression (Prometheus regex matchers are anchored). */
export function regexEscape(value: string): string {
  return value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}
