/**
 * The status page's one script, served by the daemon at /status-page.js: every 2 s it fetches the
 * page it is on again and swaps in the new header, main part and footer. A page whose main part
 * says data-live="false" (a finished deployment) stops. No framework, no build step.
 */
export const CLIENT_JS = `(() => {
  'use strict';
  const EVERY_MS = 2000;
  const PARTS = ['#page-header', '#live', 'footer'];
  async function refresh() {
    const main = document.getElementById('live');
    if (!main || main.dataset.live !== 'true') return;
    try {
      const res = await fetch(location.pathname + location.search, { headers: { accept: 'text/html' }, cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const next = new DOMParser().parseFromString(await res.text(), 'text/html');
      for (const selector of PARTS) {
        const fresh = next.querySelector(selector);
        const shown = document.querySelector(selector);
        if (fresh && shown) shown.replaceWith(document.adoptNode(fresh));
      }
      document.title = next.title;
    } catch (err) {
      const note = document.getElementById('live-note');
      if (note) note.textContent = 'Cannot reach rollguard (' + (err && err.message ? err.message : err) + '); retrying every 2 s.';
    }
    setTimeout(refresh, EVERY_MS);
  }
  setTimeout(refresh, EVERY_MS);
})();
`;
