/**
 * README.md's "Faults survived" table is generated from the `fault: … → …` test names
 * (scripts/faults-table.ts); this fails when a fault test was added or renamed without
 * regenerating it. No services needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BEGIN, collectFaults, END, expectedReadme, faultNames, FaultNameError, renderTable, withTable } from '../../scripts/faults-table.js';

describe('the README "Faults survived" table', () => {
  it('matches the fault tests of test/integration (regenerate it with `npm run faults:table`)', () => {
    const { current, expected, count } = expectedReadme();
    assert.ok(count > 0, 'there are fault tests');
    const table = (readme: string): string => readme.slice(readme.indexOf(BEGIN), readme.indexOf(END));
    assert.equal(table(current), table(expected), 'README.md\'s "Faults survived" table is out of date; run `npm run faults:table`');
    assert.equal(current, expected);
  });

  it('every fault test name reads "fault: <what is done> → <what must hold>"', () => {
    for (const f of collectFaults()) {
      assert.ok(f.done.length > 0 && f.holds.length > 0, JSON.stringify(f));
      assert.match(f.file, /^test\/integration\/[\w.-]+\.test\.ts$/);
    }
  });

  it('reads names in any quotes, skips other tests, and refuses a fault name without its arrow', () => {
    // Written as IT( so that this file's own examples are not read as fault tests.
    const source = [
      "IT('fault: kill -9 while watching → the watch resumes', async () => {});",
      'IT("fault: a \\"quoted\\" outage → still fine", { timeout: 1 }, async () => {});',
      'IT(`fault: template | pipe → cell escaped`, async () => {});',
      "IT('a plain test → not a fault', () => {});",
      "IT('fault: no arrow here', () => {});",
    ].join('\n').replaceAll('IT(', 'it(');
    assert.deepEqual(faultNames(source), ['fault: kill -9 while watching → the watch resumes', 'fault: a "quoted" outage → still fine', 'fault: template | pipe → cell escaped', 'fault: no arrow here']);
    const table = renderTable([{ done: 'template | pipe', holds: 'cell escaped', file: 'test/integration/x.test.ts' }]);
    assert.match(table, /^\| template \\\| pipe \| cell escaped \| \[x\.test\.ts\]\(test\/integration\/x\.test\.ts\) \|$/m);
    assert.equal(withTable('a\n<!-- faults:begin -->\nold\n<!-- faults:end -->\nb', 'new'), 'a\n<!-- faults:begin -->\nnew\n<!-- faults:end -->\nb');
    assert.throws(() => withTable('no markers', 'new'), /no <!-- faults:begin -->/);
    assert.ok(new FaultNameError(['x']) instanceof Error);
  });
});
