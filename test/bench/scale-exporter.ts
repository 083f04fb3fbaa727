/**
 * Synthetic services for the scale bench: one HTTP server exposing `http_requests_total` for N
 * services (10 requests/s each; `svc-0000` answers 20 % of them with 500) on /metrics, so that
 * one Prometheus holds the series of a thousand services without a thousand containers.
 *
 *   node --import tsx test/bench/scale-exporter.ts PORT N
 */
import http from 'node:http';

const port = Number(process.argv[2]);
const n = Number(process.argv[3]);
const started = Date.now();
const names = Array.from({ length: n }, (_, i) => `svc-${String(i).padStart(4, '0')}`);

http.createServer((req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  const seconds = (Date.now() - started) / 1000;
  const total = Math.floor(seconds * 10);
  const lines = ['# TYPE http_requests_total counter'];
  for (const [i, name] of names.entries()) {
    const errors = i === 0 ? Math.floor(total / 5) : 0;
    lines.push(`http_requests_total{service="${name}",code="200"} ${total - errors}`, `http_requests_total{service="${name}",code="500"} ${errors}`);
  }
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`${lines.join('\n')}\n`);
}).listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
