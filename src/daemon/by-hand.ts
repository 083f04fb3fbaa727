import type { Rule } from '../config/policy.js';

/** The signal of the rule a rollback by hand is told under: it has no samples, threshold or chart. */
export const BY_HAND_SIGNAL = 'rollguard:operator';

/** The rule a rollback by hand is recorded, told and resumed under. */
export const BY_HAND: Rule = { name: 'rollback by hand', signal: BY_HAND_SIGNAL, below: 1, for: 1, severity: 'P1', action: 'rollback' };
