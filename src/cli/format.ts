/** A measured value for a terminal: up to 6 significant digits; `-` for no data. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  return String(Number(v.toPrecision(6)));
}

/** Milliseconds after a deploy as `+45s`, `+2m`, `+1m30s`, `+1h5m`, `+750ms`. */
export function formatOffset(ms: number): string {
  if (ms < 1_000) return `+${ms}ms`;
  const s = Math.round(ms / 1_000);
  const h = Math.floor(s / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  const sec = s % 60;
  return `+${h ? `${h}h` : ''}${m ? `${m}m` : ''}${sec || (!h && !m) ? `${sec}s` : ''}`;
}

/**
 * Left-aligned columns separated by two spaces; the last column is not padded. `paint` colours a
 * body cell after padding (so escape codes never skew the widths); the head is never coloured.
 */
export function renderTable(head: string[], rows: string[][], paint?: (text: string, column: number, cell: string) => string): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (row: string[], body: boolean): string =>
    row.map((c, i) => {
      const padded = i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0);
      return body && paint ? paint(padded, i, c) : padded;
    }).join('  ').trimEnd();
  return [line(head, false), ...rows.map((r) => line(r, true))].join('\n');
}
