/**
 * The demo app, run by the host's own Node binary inside the demo image: `/ready` answers 200
 * (v1) or 503 (v2, DEMO_READY=0), `/` answers 200 or 500 likewise, and `/metrics` counts the
 * requests by code for a Prometheus. CommonJS, with no dependencies: the image holds only Node.
 */
export const DEMO_SERVER_JS = `'use strict';
const http = require('node:http');
const port = Number(process.env.PORT || 9818);
const ready = process.env.DEMO_READY !== '0';
const version = process.env.DEMO_VERSION || 'v?';
const counts = new Map();
const count = (code) => counts.set(code, (counts.get(code) || 0) + 1);
const server = http.createServer((req, res) => {
  const path = (req.url || '/').split('?')[0];
  if (path === '/metrics') {
    const lines = ['# HELP rollguard_demo_requests_total Requests served by the demo app, by status code.', '# TYPE rollguard_demo_requests_total counter'];
    for (const code of ['200', '500', '503']) lines.push('rollguard_demo_requests_total{code="' + code + '",version="' + version + '"} ' + (counts.get(code) || 0));
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\\n') + '\\n');
    return;
  }
  const code = ready ? 200 : path === '/ready' ? 503 : 500;
  count(String(code));
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ready' : 'broken', version }) + '\\n');
});
server.listen(port, '127.0.0.1', () => console.log('demo app ' + version + ' listening on 127.0.0.1:' + port));
const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
`;
