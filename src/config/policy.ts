/** The validated, typed policy. Nothing outside `config/` sees raw YAML. */

export type Severity = 'P0' | 'P1' | 'P2';
export type RuleAction = 'rollback' | 'notify';
export type ContainerField = 'restart_count' | 'oom_killed' | 'running' | 'health' | 'serving';

/** How a service's containers are recognised. Exactly one form is set. */
export type ServiceMatch =
  | { kind: 'container'; name: string }
  | { kind: 'compose'; project: string; service: string }
  | { kind: 'labels'; labels: Record<string, string> }
  /** A Swarm service by name; `stack` when matched as a service of a stack (its name is STACK_SERVICE). */
  | { kind: 'swarm'; service: string; stack?: string }
  /**
   * A git work tree deployed by checking out commits (runbook Option 1): a deployment is a new
   * HEAD commit while `branch` is checked out (or HEAD detached); `mode` is how a bad one is put
   * back: `revert` commits the revert of `<known-good>..<bad>` onto the branch in one commit (history
   * kept, as the runbook does), `checkout` detaches HEAD at the known-good commit.
   */
  | { kind: 'git'; path: string; branch: string; pollMs: number; mode: 'revert' | 'checkout' };

/** A Prometheus instant query; its single series' value is the sample. */
export interface PrometheusSignal { kind: 'prometheus'; name: string; query: string }

/** An HTTP check: 1 when every expectation holds, 0 otherwise (refused and timeouts included). */
export interface HttpSignal {
  kind: 'http';
  name: string;
  url: string;
  timeoutMs: number;
  status: number;
  /** Dot paths into the JSON body and the value each must equal. */
  json: Record<string, string | number | boolean | null>;
}

/** A field of the service's current container, read from Docker. */
export interface ContainerSignal { kind: 'container'; name: string; field: ContainerField }

/**
 * An active alert of the service in Alertmanager (asked of its API at every sample): 1 while one
 * with this alertname and these labels is active and started since the deploy, else 0.
 */
export interface AlertmanagerSignal {
  kind: 'alertmanager';
  name: string;
  alertname: string;
  /** Further labels the alert must carry, with their exact values; they may also set `serviceLabel` to another value. */
  matchers: Record<string, string>;
  /** The label whose value must be the service's name (the policy's `alertmanager.service_label`). */
  serviceLabel: string;
}

export type Signal = PrometheusSignal | HttpSignal | ContainerSignal | AlertmanagerSignal;

/** What every follow-up step has: its own time limit, and whether a failure stops the steps after it. */
interface StepBase {
  timeoutMs: number;
  /** A failure is reported and the next step runs anyway (default: the steps after it are skipped). */
  continueOnError: boolean;
}

/**
 * A step run after a verified revert (runbook Option 1 step 7, Option 2 step 8), in order. No
 * shell anywhere: commands are argv arrays. A failed step is reported with its output and never
 * undoes the revert.
 */
export type FollowUpStep = StepBase & (
  /** `docker restart` of containers by name, and of every container of these Compose services. */
  | { kind: 'restart'; containers: string[]; composeServices: { project: string; service: string }[] }
  /** Deletes the keys matching `pattern` by SCAN + UNLINK (never KEYS or FLUSHALL); without a pattern, FLUSHDB of the URL's database. */
  | { kind: 'redis_flush'; url: string; pattern?: string }
  /** `docker exec` of an argv in a running container; a non-zero exit code fails the step. */
  | { kind: 'exec'; container: string; command: string[] }
  /** An HTTP request; fails unless it answers `status` (default: any 2xx). */
  | { kind: 'http'; method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'; url: string; status?: number }
);

/** A threshold: breached when the value is above `above` or below `below`. */
export type Threshold = { above: number; below?: undefined } | { below: number; above?: undefined };

export type Rule = Threshold & {
  /**
   * Baseline-relative threshold: `above` is NaN in the loaded policy and set per deployment to
   * baseline × ratio or baseline + delta, but never below `minThreshold` (`min_threshold`), the
   * baseline being the query's average over `windowMs` before the deploy. Without the floor a
   * service with no errors before the deploy has a threshold of 0 and one error would revert, so
   * the policy requires it with a ratio (and with a delta of 0 or less). A rule whose baseline
   * could not be measured has no data. `value` is the measured baseline, once resolved.
   */
  baseline?: { windowMs: number; ratio?: number; delta?: number; minThreshold?: number; value?: number };
  /**
   * SLO burn-rate rule: each sample is the highest of min(burn(short), burn(long)) / factor over the
   * window pairs, burn being the error ratio over the range divided by the budget (1 - slo); `above`
   * is 1, so it breaches when some pair burns faster than its factor in both windows.
   */
  burnRate?: { slo: number; windows: { shortMs: number; longMs: number; factor: number }[] };
  /**
   * Scope rule: the query returns one series per tenant/route; each sample is how many series
   * cross `perSeries`, and the rule (`above: minSeries - 0.5`) breaches when at least `minSeries` do.
   */
  scope?: { minSeries: number; perSeries: Threshold };
  name: string;
  signal: string;
  /** Consecutive breaching samples needed before the rule fires. */
  for: number;
  severity: Severity;
  action: RuleAction;
};

/** A runbook success criterion checked after a revert: holds when the value is on the right side. */
export type RecoveryCheck = Threshold & { signal: string };

export interface ServicePolicy {
  name: string;
  match: ServiceMatch;
  windowMs: number;
  intervalMs: number;
  maxAttempts: number;
  stopTimeoutMs: number;
  recoveryTimeoutMs: number;
  minDataRatio: number;
  /** Samples taken before container start + warmupMs do not count. */
  warmupMs: number;
  /** Consecutive no-data samples of a rollback rule after which to notify or end the watch; never a revert. */
  onNoData?: { after: number; then: 'notify' | 'inconclusive' };
  /** An inconclusive window still makes the version known-good. */
  inconclusiveIsGood: boolean;
  /**
   * A deployment labelled `rollguard.migrations=true` is not reverted automatically (`hold`, the
   * default: page and wait for `rollguard release`) unless this says `revert`.
   */
  onMigrations: 'hold' | 'revert';
  /**
   * At most `count` reverts within `perMs`; beyond it rollguard does not revert and pages. Absent
   * only in hand-built policies (tests), where 3 per hour applies.
   */
  maxRollbacks?: { count: number; perMs: number };
  /**
   * A redeploy of an image rollguard reverted away from: `revert` reverts it at once, `warn` tells
   * the on-call and watches it normally. Absent only in hand-built policies, where `revert` applies.
   */
  onBadImage?: 'revert' | 'warn';
  /**
   * `pass_after`: a deployment whose every rule (notify rules and the built-in serving rule
   * included) was ok for `ok` samples in a row, at least `minMs` after it started, becomes
   * known-good before its window ends (recorded as passed_early). Absent: only the window's end
   * passes a deployment.
   */
  passAfter?: { ok: number; minMs: number };
  /** Traffic floor: below it, Prometheus-based rules get no-data samples. */
  minRequests?: { signal: string; atLeast: number };
  /** Steps run after a verified revert, in order (restart workers, flush the cache…). */
  afterRollback?: FollowUpStep[];
  /**
   * The service's application database (runbook Option 3): before reverting a deployment that
   * carries migrations, a `pg_dump -Fc` safety snapshot of it goes to the state directory; the
   * newest `keep` per service are kept.
   */
  database?: { url: string; keep: number; timeoutMs: number };
  /**
   * Run in the known-good version (a one-off container of its image and settings) after the
   * snapshot and before the bad version is touched, when the deployment carries migrations: e.g.
   * `manage.py migrate accounting 0002`. If it fails, the bad version keeps running and the
   * revert escalates with the snapshot's path.
   */
  downMigration?: { command: string[]; timeoutMs: number };
  /** git services: the argv that restarts the application after its code was put back (no shell). */
  restart?: { command: string[]; timeoutMs: number };
  signals: Record<string, Signal>;
  rules: Rule[];
  recovery: RecoveryCheck[];
  /** This service's routes; severities not named fall back to the policy's routes. */
  notify: Partial<Record<Severity, string[]>>;
}

/** A notification channel with its secrets resolved (from the environment or a file). */
export type Channel =
  | { kind: 'email'; name: string; smtpUrl: string; from: string; to: string[] }
  | { kind: 'pagerduty'; name: string; routingKey: string; url: string }
  | { kind: 'slack'; name: string; webhookUrl: string }
  | { kind: 'webhook'; name: string; url: string; secret: string; /** The signature scheme; rollguard's own when absent. */ signature?: 'rollguard' | 'standard' };

export type Maintenance =
  | { kind: 'file'; path: string; content: string; timeoutMs: number }
  | { kind: 'command'; argv: string[]; timeoutMs: number };

/**
 * How to reach Prometheus, with the secrets and PEM files read at load. The credentials are for
 * the HTTP client only: what people see names `externalUrl` or the url without its credentials.
 */
export interface PrometheusSettings {
  /** The API base URL, without a trailing slash (it may carry user:password@ from the environment). */
  url: string;
  timeoutMs: number;
  /** The base of graph links shown to people (`external_url`); absent: the url without its credentials. */
  externalUrl?: string;
  basicAuth?: { username: string; password: string };
  /** Sent as `Authorization: <type> <credentials>`. */
  authorization?: { type: string; credentials: string };
  /** Extra request headers (`X-Scope-OrgID`…); absent in hand-built policies. */
  headers?: Record<string, string>;
  /** TLS settings: PEM contents of the CA, client certificate and key files. */
  tls?: { ca?: string; cert?: string; key?: string; serverName?: string; insecureSkipVerify: boolean };
}

export interface Policy {
  version: 1;
  /** Absolute path of the file this policy came from. */
  source: string;
  prometheus?: PrometheusSettings;
  services: Record<string, ServicePolicy>;
  notifications: Record<string, Channel>;
  routes: Partial<Record<Severity | 'detected', string[]>>;
  /** Who to call when a rollback fails. */
  escalation: string[];
  maintenance?: Maintenance;
  digest?: { schedule: string; timezone?: string; to: string[] };
  /**
   * Alertmanager: where alertmanager signals read the alerts, the label naming the service in
   * alerts, and the silence of the service's alerts kept while a revert runs (created when it
   * starts, expired when it ends).
   */
  alertmanager?: {
    /** Alertmanager's base URL, without a trailing slash (it may carry user:password@ from the environment); set whenever a signal or the silence needs it. */
    url?: string;
    serviceLabel: string;
    silence?: { forMs: number };
  };
}
