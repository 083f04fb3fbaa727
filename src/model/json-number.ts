// JSON has no Infinity: JSON.stringify writes ±Infinity as null, which reads back as "no data".
// A +Inf sample (an error ratio over zero successes, a quantile past the top bucket) is the worst
// case, not an absence; where such a value goes into JSON it is written as Prometheus writes it.

/** A number as JSON can carry it: ±Infinity as `'+Inf'` / `'-Inf'`. */
export type JsonNumber = number | '+Inf' | '-Inf';

/** `Infinity` → `'+Inf'`, `-Infinity` → `'-Inf'`; any other value unchanged (usable as a JSON.stringify replacer's body). */
export function jsonNumber<T>(v: T): T | '+Inf' | '-Inf' {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return v;
}

/** `'+Inf'` → `Infinity`, `'-Inf'` → `-Infinity`; any other value unchanged. */
export function fromJsonNumber<T>(v: T): T | number {
  if (v === '+Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  return v;
}
