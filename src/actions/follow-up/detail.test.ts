import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { composeDetail, MAX_DETAIL_CHARS } from './detail.js';

describe('composeDetail', () => {
  it('is the summary alone when there is no output', () => {
    assert.equal(composeDetail('restarted web'), 'restarted web');
    assert.equal(composeDetail('exit code 0', '  \n'), 'exit code 0');
  });

  it('puts the output under the summary when both fit', () => {
    assert.equal(composeDetail('exit code 2', 'error: no such table\n'), 'exit code 2\nerror: no such table');
  });

  it('cuts the beginning of a long output, says so, and never passes the limit', () => {
    for (const size of [1_990, 2_000, 2_500, 10_000, 1_000_000]) {
      const output = `${'a'.repeat(size - 3)}END`;
      const detail = composeDetail('exit code 1', output);
      assert.ok(detail.length <= MAX_DETAIL_CHARS, `${size}: ${detail.length} chars`);
      assert.ok(detail.startsWith('exit code 1\n'));
      assert.ok(detail.endsWith('END'));
      const cut = detail.includes('\n[… earlier output cut]\n');
      assert.equal(cut, size > MAX_DETAIL_CHARS - 'exit code 1\n'.length, `${size}: marked as cut`);
      if (cut) assert.ok(detail.length > MAX_DETAIL_CHARS - 10, 'the room is used');
    }
  });

  it('a long summary is shortened so that output still shows', () => {
    const detail = composeDetail(`failed: ${'x'.repeat(5_000)}`, 'the output');
    assert.ok(detail.length < 600);
    assert.ok(detail.endsWith('…\nthe output'));
  });

  it('removes URL credentials before cutting, so no part of a secret is left', () => {
    const secretUrl = 'amqp://user:hunter2-pw@mq:5672/vhost';
    const output = `${secretUrl} ${'y'.repeat(1_990)}`;
    const detail = composeDetail(`cannot reach ${secretUrl}`, output);
    assert.ok(!detail.includes('hunter2') && !detail.includes('user:'), detail);
    assert.ok(detail.startsWith('cannot reach amqp://mq:5672/vhost\n'));
  });
});
