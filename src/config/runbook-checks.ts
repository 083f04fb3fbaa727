import { isMap, Problem } from './raw.js';

/**
 * Checks of the runbook keys (after_rollback, database, down_migration, restart) that depend on
 * the service's match; run on the raw document beside the other cross-reference checks, so all
 * problems are reported together.
 */



export function runbookProblems(svcName: string, svc: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const at = (...keys: (string | number)[]): (string | number)[] => ['services', svcName, ...keys];
  const m = isMap(svc.match) ? svc.match : {};
  const git = m.git !== undefined;
  const compose = m.compose !== undefined;
  const swarm = m.swarm_service !== undefined || m.stack !== undefined;
  if (!git) {
    for (const key of ['restart', 'restart_timeout'] as const) {
      if (svc[key] !== undefined) problems.push({ keys: at(key), message: `${key} is for git services (match: git); a container's restart is the revert itself` });
    }
  } else {
    if (isMap(svc.signals)) {
      for (const [sigName, sig] of Object.entries(svc.signals)) {
        if (isMap(sig) && sig.container !== undefined) problems.push({ keys: at('signals', sigName, 'container'), message: 'a git work tree has no container to read; measure the application over http or prometheus' });
      }
    }
    if (svc.down_migration !== undefined) problems.push({ keys: at('down_migration'), message: 'down_migration runs in the known-good image, and a git service has none; a code-only deployment carries no migrations (runbook Option 1)' });
    if (!Array.isArray(svc.recovery) || !svc.recovery.length) {
      problems.push({ keys: at('match', 'git'), message: 'a git service needs recovery criteria (e.g. - {signal: ready, above: 0}): a work tree has no process rollguard could see restart, so only they tell that the revert worked (runbook: "verify")' });
    }
  }
  if (svc.down_migration !== undefined && svc.database === undefined) {
    problems.push({ keys: at('down_migration'), message: 'down_migration needs database: no schema is changed without a safety snapshot first (runbook Option 3 step 3)' });
  }
  if (svc.down_migration !== undefined && swarm) {
    problems.push({ keys: at('down_migration'), message: 'down_migration runs as a one-off container on this engine; for a Swarm service run it from your pipeline' });
  }
  if (Array.isArray(svc.after_rollback)) {
    svc.after_rollback.forEach((step: unknown, i) => {
      const restart = isMap(step) && isMap(step.restart) ? step.restart : undefined;
      if (restart && Array.isArray(restart.compose_services) && restart.compose_services.length && !compose) {
        problems.push({ keys: at('after_rollback', i, 'restart', 'compose_services'), message: 'compose_services are services of the same Compose project, so this service must be matched by compose; name containers instead' });
      }
    });
  }
  return problems;
}

/** The places of the runbook keys whose URL may carry a password, which must come from the environment. */
export function runbookUrlPlaces(svcName: string, steps: number): (string | number)[][] {
  const places: (string | number)[][] = [['services', svcName, 'database', 'url']];
  for (let i = 0; i < steps; i++) places.push(['services', svcName, 'after_rollback', i, 'redis_flush', 'url'], ['services', svcName, 'after_rollback', i, 'http', 'url']);
  return places;
}

/** Two git services on one work tree would each claim its commits, and neither would be watched. */
export function gitPathProblems(services: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, string>();
  for (const [name, svc] of Object.entries(services)) {
    const git = isMap(svc) && isMap(svc.match) && isMap(svc.match.git) ? svc.match.git : undefined;
    if (!git || typeof git.path !== 'string') continue;
    const at = git.path.replace(/\/+$/, '').replace(/\/{2,}/g, '/') || '/';
    const first = seen.get(at);
    if (first) problems.push({ keys: ['services', name, 'match', 'git', 'path'], message: `${at} is already the work tree of service ${first}; one service per work tree` });
    else seen.set(at, name);
  }
  return problems;
}
