import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { CLIENT_JS } from './client.js';

// The live-update script runs in a browser; here it runs in a VM context over a small stand-in for
// the DOM, with fetch, timers and AbortSignal.timeout in the test's hands.

interface FakeElement { id: string; className: string; textContent: string; attrs: Record<string, string>; setAttribute(k: string, v: string): void; remove(): void }

function browser(fetch: (url: string, init: { signal: AbortSignal }) => Promise<unknown>) {
  const timers: (() => Promise<void> | void)[] = [];
  const timeouts: { ms: number; controller: AbortController }[] = [];
  const classes = new Set<string>();
  const children: FakeElement[] = [];
  const element = (): FakeElement => ({
    id: '', className: '', textContent: '', attrs: {},
    setAttribute(k, v) { this.attrs[k] = v; },
    remove() { children.splice(children.indexOf(this), 1); },
  });
  const document = {
    title: 'rollguard status',
    body: { classList: { add: (c: string) => classes.add(c), remove: (c: string) => classes.delete(c) }, prepend: (e: FakeElement) => children.unshift(e) },
    createElement: element,
    getElementById: (id: string) => (id === 'live' ? { dataset: { live: 'true' } } : children.find((c) => c.id === id) ?? null),
    querySelector: (selector: string) => (selector === 'footer time' ? { getAttribute: () => '2024-05-01T12:00:00.000Z' } : null),
    adoptNode: (n: unknown) => n,
  };
  const AbortSignalStandIn = {
    timeout(ms: number): AbortSignal {
      const controller = new AbortController();
      timeouts.push({ ms, controller });
      return controller.signal;
    },
  };
  const DOMParser = class { parseFromString() { return { title: 'rollguard status', querySelector: () => null }; } };
  vm.runInNewContext(CLIENT_JS, {
    document, location: { pathname: '/', search: '' }, fetch, DOMParser, AbortSignal: AbortSignalStandIn, Error, Object, Date,
    setTimeout: (fn: () => void) => { timers.push(fn); },
  });
  return {
    timeouts,
    classes,
    banner: () => children.find((c) => c.id === 'stale-banner'),
    /** Runs the next scheduled refresh and waits until it has scheduled the one after it. */
    async refresh(whileWaiting?: () => void): Promise<void> {
      const next = timers.shift();
      assert.ok(next, 'a refresh is scheduled');
      void next();
      whileWaiting?.();
      for (let i = 0; i < 1_000 && timers.length === 0; i++) await new Promise((r) => setImmediate(r));
      assert.equal(timers.length, 1, 'the next refresh is scheduled');
    },
  };
}

describe('status page: the live-update script', () => {
  it('gives up on a request after 8 s and shows a stale banner with the time of the last update', async () => {
    // A request that hangs until its signal gives up, as a daemon that does not answer.
    const b = browser((_url, init) => new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason))));
    await b.refresh(() => {
      assert.equal(b.timeouts.length, 1, 'the request carries a time limit');
      assert.equal(b.timeouts[0]?.ms, 8_000);
      b.timeouts[0]?.controller.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    });
    assert.ok(b.classes.has('stale'), 'the page is marked stale');
    assert.equal(b.banner()?.attrs.role, 'alert');
    assert.match(b.banner()?.textContent ?? '', /^stale — not updated since 12:00:00 UTC: rollguard did not answer within 8 s; retrying every 2 s\.$/);
  });

  it('words a 5xx as the HTTP status rollguard answered, and clears the banner once an update succeeds', async () => {
    let answer: { ok: boolean; status: number; statusText: string; text?: () => Promise<string> } = { ok: false, status: 503, statusText: 'Service Unavailable' };
    const b = browser(async () => answer);
    await b.refresh();
    assert.match(b.banner()?.textContent ?? '', /rollguard answered HTTP 503 Service Unavailable/);
    assert.ok(b.classes.has('stale'));

    answer = { ok: true, status: 200, statusText: 'OK', text: async () => '<html></html>' };
    await b.refresh();
    assert.equal(b.banner(), undefined, 'the banner is gone');
    assert.ok(!b.classes.has('stale'));
  });
});
