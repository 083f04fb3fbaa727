/** What the demo's policy watches, and how. */
export interface DemoPolicyInput {
  /** The demo app's container name. */
  container: string;
  /** The demo app's loopback port. */
  port: number;
  /** A Prometheus that scrapes the demo app, for an error-ratio rule besides readiness. */
  prometheus?: string;
}

/** The demo's error-ratio query: 5xx over all requests the demo app counted, over 10 s. */
export const DEMO_ERROR_RATIO = 'sum(rate(rollguard_demo_requests_total{code=~"5.."}[10s])) / sum(rate(rollguard_demo_requests_total[10s]))';

/**
 * The demo's policy: the runbook's readiness rule and the built-in container signals, with
 * timings short enough for the whole loop to finish in well under a minute (1 s samples, a
 * revert after 3 failing ones, 1 s stop grace). With a Prometheus, the runbook's 5 % error rule too.
 */
export function demoPolicy(input: DemoPolicyInput): string {
  const prom = input.prometheus;
  return `# Written by \`rollguard demo\`; removed when it ends.
version: 1
${prom ? `prometheus:\n  url: ${JSON.stringify(prom)}\n  timeout: 2s\n` : ''}defaults:
  window: 30s
  interval: 1s
  max_attempts: 2
  stop_timeout: 1s
  recovery_timeout: 20s
  min_data_ratio: 0.5
services:
  demo:
    match:
      container: ${input.container}
    signals:
      ready:
        http:
          url: http://127.0.0.1:${input.port}/ready
          timeout: 1s
          status: 200
      restarts:
        container: restart_count
${prom ? `      error_rate:\n        prometheus: '${DEMO_ERROR_RATIO}'\n` : ''}    rules:
      - name: readiness failing
        signal: ready
        below: 1
        for: 3
        severity: P0
        action: rollback
${prom ? '      - name: error rate above 5%\n        signal: error_rate\n        above: 0.05\n        for: 3\n        severity: P0\n        action: rollback\n' : ''}      - name: container restarting
        signal: restarts
        above: 2
        for: 1
        severity: P1
        action: notify
    recovery:
      - {signal: ready, above: 0}
`;
}
