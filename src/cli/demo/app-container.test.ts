import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { demuxLog } from './app-container.js';

const frame = (stream: number, text: string): Buffer => {
  const body = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
};

describe('demuxLog()', () => {
  it('joins the stdout and stderr frames of a container log in order', () => {
    const raw = Buffer.concat([frame(1, 'demo app v1 starting\n'), frame(2, 'Error: listen EADDRINUSE: address already in use 127.0.0.1:9818\n')]);
    assert.equal(demuxLog(raw), 'demo app v1 starting\nError: listen EADDRINUSE: address already in use 127.0.0.1:9818\n');
  });

  it('returns a log without frames (a TTY container\'s) as it is', () => {
    assert.equal(demuxLog(Buffer.from('plain text from a terminal\n')), 'plain text from a terminal\n');
  });
});
