import type { Command } from 'commander';

/** Examples shown at the end of each command's --help, by command path. */
export const EXAMPLES: Record<string, string[]> = {
  '': [
    'rollguard demo                                   # the whole loop on this host in about a minute',
    'rollguard init                                   # a starter policy for what runs here',
    'rollguard run --policy rollguard.yaml            # guard every deploy',
    'rollguard status                                 # what the running daemon watches',
  ],
  demo: [
    'rollguard demo',
    'rollguard demo --listen 127.0.0.1:9900',
  ],
  init: [
    'rollguard init                                   # writes ./rollguard.yaml',
    'rollguard init --stdout > /etc/rollguard/policy.yaml',
  ],
  run: [
    'rollguard run --policy /etc/rollguard/policy.yaml',
    'DATABASE_URL=postgres://rollguard@db/rollguard rollguard run --policy policy.yaml --listen 0.0.0.0:9817',
    'rollguard run --policy policy.yaml --dry-run      # decide and record, never touch containers',
  ],
  policy: [
    'rollguard policy check policy.yaml',
    'rollguard policy schema > rollguard.schema.json',
  ],
  'policy check': [
    'rollguard policy check policy.yaml',
    'rollguard policy check policy.yaml --live --image registry/web:1.4.2',
  ],
  'policy schema': ['rollguard policy schema > rollguard.schema.json'],
  status: [
    'rollguard status',
    'rollguard status --json | jq .services',
  ],
  notify: ['rollguard notify test oncall --policy policy.yaml'],
  'notify test': ['rollguard notify test oncall --policy policy.yaml'],
  hold: ['ROLLGUARD_API_TOKEN_FILE=/etc/rollguard/token rollguard hold web --for 15m --reason "fix forward: patch in review"'],
  release: ['rollguard release web'],
  rollback: [
    'rollguard rollback web                           # asks, then reverts to the known-good version',
    'rollguard rollback web --yes --reason "checkout errors after 1.4.2"',
    'rollguard rollback web --to registry/web:1.4.0 --yes',
  ],
  history: [
    'rollguard history',
    'rollguard history --service web --limit 10 --json',
    'rollguard history --deployment 42',
  ],
  snapshots: [
    'rollguard snapshots',
    'rollguard snapshots --service web --json | jq -r \'.[0].id\'',
  ],
  'restore-hint': [
    'rollguard restore-hint web-d12-20261129T233000Z',
    'rollguard restore-hint "$(rollguard snapshots --service web --json | jq -r \'.[0].id\')"',
  ],
  simulate: [
    'rollguard simulate --policy policy.yaml --service web --deploy-at 2026-11-26T14:05:00Z',
    'rollguard simulate --policy new-policy.yaml --since 7d',
  ],
};

/** Adds each command's examples to its --help; returns the paths of commands that have none. */
export function addExamples(program: Command): string[] {
  const missing: string[] = [];
  const visit = (cmd: Command, path: string): void => {
    const lines = EXAMPLES[path];
    if (lines) cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
    else missing.push(path);
    for (const sub of cmd.commands) visit(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  visit(program, '');
  return missing;
}
