import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutputTail } from './exec.js';

function write(tail: OutputTail, text: string): Promise<void> {
  return new Promise((resolve, reject) => tail.write(Buffer.from(text), (err) => (err ? reject(err) : resolve())));
}

describe('OutputTail', () => {
  it('keeps everything written while under its limit', async () => {
    const tail = new OutputTail(100);
    await write(tail, 'hello ');
    await write(tail, 'world');
    assert.equal(tail.text(), 'hello world');
    assert.equal(tail.total, 11);
  });

  it('keeps only the last bytes of a long output, however it was chunked', async () => {
    const tail = new OutputTail(10);
    for (let i = 0; i < 50; i += 1) await write(tail, `line ${i}\n`);
    assert.equal(tail.text(), '8\nline 49\n');
    assert.equal(tail.total, 10 * 'line 0\n'.length + 40 * 'line 10\n'.length);
  });
});
