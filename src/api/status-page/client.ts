/**
 * The status page's one script, served by the daemon at /status-page.js: every 2 s it fetches the
 * page it is on again and swaps in the new header, main part and footer. A page whose main part
 * says data-live="false" (a finished deployment) stops. Each request gives up after 8 s; while
 * updates fail, a banner at the top says since when the page is stale and the body carries the
 * class `stale` (the data are dimmed). No framework, no build step.
 */
export const CLIENT_JS = `(() => {
  'use strict';
  const EVERY_MS = 2000;
  const TIMEOUT_MS = 8000;
  const PARTS = ['#page-header', '#live', 'footer'];
  const shown = document.querySelector('footer time');
  let updatedAt = shown && shown.getAttribute('datetime') ? new Date(shown.getAttribute('datetime')) : new Date();
  function clock(at) {
    return at.toISOString().slice(11, 19) + ' UTC';
  }
  function why(err) {
    if (err && err.name === 'TimeoutError') return 'rollguard did not answer within ' + TIMEOUT_MS / 1000 + ' s';
    if (err && err.status) return 'rollguard answered HTTP ' + err.status + (err.statusText ? ' ' + err.statusText : '');
    return 'cannot reach rollguard (' + (err && err.message ? err.message : err) + ')';
  }
  function stale(err) {
    document.body.classList.add('stale');
    let banner = document.getElementById('stale-banner');
    if (!banner) {
      banner = document.createElement('div');
      banner.id = 'stale-banner';
      banner.className = 'stale-banner';
      banner.setAttribute('role', 'alert');
      document.body.prepend(banner);
    }
    banner.textContent = 'stale — not updated since ' + clock(updatedAt) + ': ' + why(err) + '; retrying every ' + EVERY_MS / 1000 + ' s.';
  }
  function fresh() {
    document.body.classList.remove('stale');
    const banner = document.getElementById('stale-banner');
    if (banner) banner.remove();
  }
  async function refresh() {
    const main = document.getElementById('live');
    if (!main || main.dataset.live !== 'true') return;
    try {
      const res = await fetch(location.pathname + location.search, { headers: { accept: 'text/html' }, cache: 'no-store', signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!res.ok) throw Object.assign(new Error('HTTP ' + res.status), { status: res.status, statusText: res.statusText });
      const next = new DOMParser().parseFromString(await res.text(), 'text/html');
      for (const selector of PARTS) {
        const fresher = next.querySelector(selector);
        const current = document.querySelector(selector);
        if (fresher && current) current.replaceWith(document.adoptNode(fresher));
      }
      document.title = next.title;
      updatedAt = new Date();
      fresh();
    } catch (err) {
      stale(err);
    }
    setTimeout(refresh, EVERY_MS);
  }
  setTimeout(refresh, EVERY_MS);
})();
`;
