import { execFile } from 'node:child_process';
import { redactUrlsIn } from '../../model/redact-url.js';

/** pg_dump's stderr kept in an error message: its last lines say why. */
const MAX_REASON = 2_000;

/** `text` with the password taken out wherever it appears, and every URL's credentials. */
function redact(text: string, password: string | undefined): string {
  const plain = password ? text.split(password).join('***') : text;
  return redactUrlsIn(plain);
}

/**
 * Runs `pg_dump -Fc` of the database at `url` (no password in it) into `file`, with no shell,
 * the password only in PGPASSWORD (never in argv, which `ps` shows) and `--no-password` so a
 * missing one fails at once instead of waiting for a prompt nobody answers. Past `timeoutMs`
 * pg_dump is killed. Throws with pg_dump's stderr (redacted) and exit code.
 */
export function runPgDump(opts: { url: string; password?: string; file: string; timeoutMs: number }): Promise<void> {
  const args = ['-Fc', '--no-password', '-f', opts.file, '--dbname', opts.url];
  const env = { ...process.env };
  if (opts.password !== undefined) env.PGPASSWORD = opts.password;
  const database = redactUrlsIn(opts.url);
  return new Promise((resolve, reject) => {
    execFile('pg_dump', args, { env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const reason = redact(String(stderr ?? '').trim(), opts.password).slice(-MAX_REASON) || 'no output';
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new Error('pg_dump is not installed (not on PATH): install the PostgreSQL client tools (Debian: postgresql-client), of the server\'s major version or newer'));
      }
      if ((err as NodeJS.ErrnoException).code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
        return reject(new Error(`pg_dump of ${database} wrote more than 1 MiB of messages and was stopped: ${reason}`));
      }
      if (err.killed) {
        return reject(new Error(`pg_dump of ${database} did not finish within ${opts.timeoutMs} ms and was stopped (${err.signal ?? 'killed'}): ${reason}`));
      }
      const how = typeof err.code === 'number' ? `exit code ${err.code}` : `signal ${err.signal ?? 'unknown'}`;
      reject(new Error(`pg_dump of ${database} failed (${how}): ${reason}`));
    });
  });
}
