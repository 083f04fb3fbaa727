/**
 * Writes README.md's "Faults survived" table from the integration tests that prove a fault is
 * survived: every test named `fault: <what is done> → <what must hold>` in
 * test/integration/*.test.ts becomes a row. `npm run faults:table` rewrites the table;
 * `--check` only says whether it is up to date (exit 1 if not).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TESTS_DIR = 'test/integration';
export const BEGIN = '<!-- faults:begin -->';
export const END = '<!-- faults:end -->';
const PREFIX = 'fault: ';
const ARROW = ' → ';

/** One `fault:` test: what is done, what must hold, and the file it is in (relative to the checkout). */
export interface Fault {
  done: string;
  holds: string;
  file: string;
}

/** A test name that starts like a fault test but does not read `fault: <what is done> → <what must hold>`. */
export class FaultNameError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'FaultNameError';
  }
}

/** A string literal's text with its escapes resolved (the quote, backslash, \n, \t, \u{…}). */
function unescape(body: string): string {
  return body.replace(/\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|.)/g, (_, e: string) => {
    if (e.startsWith('u')) return String.fromCodePoint(parseInt(e.replace(/[u{}]/g, ''), 16));
    return ({ n: '\n', t: '\t' } as Record<string, string>)[e] ?? e;
  });
}

/** The `fault:` test names of one test file's source, in order. */
export function faultNames(source: string): string[] {
  const names: string[] = [];
  const call = /\b(?:it|test)(?:\.only|\.skip|\.todo)?\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g;
  for (const m of source.matchAll(call)) {
    const name = unescape(m[2] as string);
    if (name.startsWith(PREFIX) || /^fault\b/i.test(name)) names.push(name);
  }
  return names;
}

/** Every fault test of the integration tests, by file name then by order in the file. */
export function collectFaults(root = ROOT): Fault[] {
  const dir = path.join(root, TESTS_DIR);
  const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort();
  const faults: Fault[] = [];
  const problems: string[] = [];
  for (const f of files) {
    const file = `${TESTS_DIR}/${f}`;
    for (const name of faultNames(readFileSync(path.join(dir, f), 'utf8'))) {
      const rest = name.startsWith(PREFIX) ? name.slice(PREFIX.length) : '';
      const parts = rest.split(ARROW);
      if (parts.length !== 2 || !parts[0]?.trim() || !parts[1]?.trim() || name.includes('${')) {
        problems.push(`${file}: "${name}" does not read "fault: <what is done> → <what must hold>"`);
        continue;
      }
      faults.push({ done: (parts[0] as string).trim(), holds: (parts[1] as string).trim(), file });
    }
  }
  if (problems.length) throw new FaultNameError(problems);
  return faults;
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/** The Markdown table of `faults`. */
export function renderTable(faults: readonly Fault[]): string {
  const rows = faults.map((f) => `| ${cell(f.done)} | ${cell(f.holds)} | [${path.basename(f.file)}](${f.file}) |`);
  return ['| fault (what is done) | what must hold | proven by |', '| --- | --- | --- |', ...rows].join('\n');
}

/** `readme` with the text between the markers replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no ${BEGIN} … ${END} block`);
  return `${readme.slice(0, begin + BEGIN.length)}\n${table}\n${readme.slice(end)}`;
}

/** README.md as it should be: its own text with the current table. */
export function expectedReadme(root = ROOT): { current: string; expected: string; count: number } {
  const current = readFileSync(path.join(root, 'README.md'), 'utf8');
  const faults = collectFaults(root);
  return { current, expected: withTable(current, renderTable(faults)), count: faults.length };
}

function main(): void {
  try {
    const { current, expected, count } = expectedReadme();
    if (process.argv.includes('--check')) {
      if (current !== expected) {
        process.stderr.write('README.md\'s "Faults survived" table is out of date; run `npm run faults:table`\n');
        process.exitCode = 1;
      }
      return;
    }
    if (current !== expected) writeFileSync(path.join(ROOT, 'README.md'), expected);
    process.stdout.write(`README.md: ${count} fault(s) survived${current === expected ? ', already up to date' : ''}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
