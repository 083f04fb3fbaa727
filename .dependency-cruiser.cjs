// The dependency rules of rollguard's source tree (see STYLE.md, "The shape of the house").
// `npm run depcheck` checks them and scripts/test.sh runs it, so a violation fails the test run.
// CommonJS (.cjs) because package.json says "type": "module": dependency-cruiser's FAQ
// ("My package is pure ESM…") and its --init both use .dependency-cruiser.cjs for such projects.
//
// No known violations are kept: a violation fails the run until it is fixed.
// `npx depcruise src --config .dependency-cruiser.cjs -T err-long` explains each rule broken.

/** Test code: free to use node:test, fixtures and I/O, so it is left out of the purity rule only. */
const TEST_FILES = '\\.(test|fixture)\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'policy-is-pure',
      severity: 'error',
      comment:
        'policy/ is pure functions: samples + policy in, verdict and plan of steps out, no I/O. ' +
        'It may import only policy/, the two config/ modules that define the typed policy ' +
        '(config/policy.ts, config/duration.ts) and model/. Everything else is refused: node builtins ' +
        '(fs, net, http, https, child_process, dgram, dns, tls, worker_threads, cluster and the rest), ' +
        'npm packages (axios, pg, dockerode, better-sqlite3, nodemailer, pino and the rest) and ' +
        'the folders that do I/O (store, signals, daemon, notify, actions, api, cli, deploys, targets). ' +
        'Need a value from one of those? Have the daemon pass it in as data. Tests and fixtures are exempt.',
      from: { path: '^src/policy/', pathNot: TEST_FILES },
      to: {
        pathNot: ['^src/policy/', '^src/config/(policy|duration)\\.ts$', '^src/model/'],
      },
    },
    {
      name: 'no-cycles',
      severity: 'error',
      comment:
        'No circular imports anywhere in src/, tests included. Type-only imports (`import type`) ' +
        'count too (options.tsPreCompilationDeps: true): dependency-cruiser sees them only with that ' +
        'option on, its documentation gives no advice to exempt them from cycle checks, and a type ' +
        'cycle still ties two folders together - the house style puts shared types in model/ ' +
        'precisely so that they do not. Break a cycle by moving the shared type to src/model/ or ' +
        'by passing a function or value in instead of importing it.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'store-stays-low',
      severity: 'error',
      comment:
        'store/ (pg / SQLite, migrations, repositories) sits below the layers that use it: it imports ' +
        'model/ for the types it keeps, never notify/, daemon/, api/ or cli/. A type the store must ' +
        'persist (e.g. the outbox\'s NotificationEvent) belongs in src/model/.',
      from: { path: '^src/store/' },
      to: { path: '^src/(notify|daemon|api|cli)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import dependency-cruiser cannot resolve to a file is one no rule above can check, so ' +
        'it fails the check rather than slipping through. Usually a typo or a missing package.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: they are what model/ and the purity rule are about.
    tsPreCompilationDeps: true,
    // The type-check project covers src/ including tests, so `./x.js` resolves to `./x.ts` as tsc does.
    tsConfig: { fileName: 'tsconfig.check.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
  },
};
