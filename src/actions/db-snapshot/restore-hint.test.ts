import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { restoreHint, shellQuote } from './restore-hint.js';

const sh = promisify(execFile);

describe('restoreHint', () => {
  it('gives the exact pg_restore command, database and file single-quoted, then a note that rollguard never restores', () => {
    const hint = restoreHint({ database: 'postgresql://erp@127.0.0.1:5432/himalytix', path: '/var/lib/rollguard/snapshots/web-d12-20261129T233000Z.dump' });
    const [command, ...note] = hint.split('\n');
    assert.equal(command, "pg_restore --clean --if-exists --single-transaction --no-owner --dbname 'postgresql://erp@127.0.0.1:5432/himalytix' '/var/lib/rollguard/snapshots/web-d12-20261129T233000Z.dump'");
    const text = note.join(' ');
    assert.match(text, /PGPASSWORD or ~\/\.pgpass/);
    assert.match(text, /never restores by itself/);
    assert.match(text, /stop the application first/);
    assert.ok(note.every((l) => l.startsWith('# ')), 'the note is shell comments, so the whole hint can be pasted');
  });

  it('never shows a password, even one edited into the sidecar by hand', () => {
    const hint = restoreHint({ database: 'postgresql://erp:hunter2@db/app?password=hunter3', path: '/s/x.dump' });
    assert.doesNotMatch(hint, /hunter/);
    assert.match(hint, /--dbname 'postgresql:\/\/erp@db\/app' /);
  });

  it('quotes any text as one shell word that comes back unchanged', async () => {
    const words = ["it's", "'", "''", 'a b', '$HOME `id` $(id) "x" \\n', '*?[]', ';rm -rf /;', 'line\nbreak', ''];
    for (const word of words) {
      const { stdout } = await sh('sh', ['-c', `printf %s ${shellQuote(word)}`]);
      assert.equal(stdout, word, `round trip of ${JSON.stringify(word)}`);
    }
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
  });

  it('a quote in the path or the database stays inside its argument', async () => {
    const hint = restoreHint({ database: "postgresql://db/o'brien", path: "/srv/state dir/it's.dump" });
    const argv = (await sh('sh', ['-c', `printf '%s\\n' ${hint.split('\n')[0]!.replace(/^pg_restore /, '')}`])).stdout.split('\n').slice(0, -1);
    assert.deepEqual(argv, ['--clean', '--if-exists', '--single-transaction', '--no-owner', '--dbname', "postgresql://db/o'brien", "/srv/state dir/it's.dump"]);
  });
});
