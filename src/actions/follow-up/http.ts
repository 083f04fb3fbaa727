import type { Readable } from 'node:stream';
import axios from 'axios';
import type { FollowUpStep } from '../../config/policy.js';
import { errorText, type FollowUpKind, type StepContext, type StepOutcome } from './kind.js';

type HttpStep = Extract<FollowUpStep, { kind: 'http' }>;

/** How much of the body is read: enough to show why a request failed, never a large download. */
const BODY_BYTES = 4096;
/** How much of the body a failure shows. */
const SHOWN_CHARS = 500;

/** The first `limit` bytes of a response body; the rest is not read. */
function bodyStart(body: Readable, limit: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      body.destroy();
      resolve(Buffer.concat(chunks).subarray(0, limit).toString('utf8'));
    };
    body.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) done();
    });
    body.on('end', done);
    body.on('error', done);
    body.on('close', done);
  });
}

/** An HTTP request that must answer `status`, or any 2xx when the step sets none. */
export const http: FollowUpKind<HttpStep> = {
  label(step) {
    return `http ${step.method} ${step.url}`;
  },

  async run(step, ctx: StepContext): Promise<StepOutcome> {
    let res;
    try {
      res = await axios.request<Readable>({
        method: step.method,
        url: step.url,
        responseType: 'stream',
        validateStatus: () => true,
        signal: ctx.signal,
        headers: { 'user-agent': 'rollguard' },
      });
    } catch (err) {
      return { ok: false, summary: `request failed: ${errorText(err)}` };
    }
    const body = (await bodyStart(res.data, BODY_BYTES)).trim();
    const ok = step.status === undefined ? res.status >= 200 && res.status < 300 : res.status === step.status;
    if (ok) return { ok: true, summary: `answered ${res.status}` };
    const expected = step.status === undefined ? '2xx' : String(step.status);
    const shown = body.length > SHOWN_CHARS ? `${body.slice(0, SHOWN_CHARS)}…` : body;
    return { ok: false, summary: `answered ${res.status} (expected ${expected})`, output: shown || undefined };
  },
};
