import type { FollowUpStep } from '../../config/policy.js';
import { exec } from './exec.js';
import { http } from './http.js';
import type { FollowUpKind } from './kind.js';
import { redisFlush } from './redis-flush.js';
import { restart } from './restart.js';

/** One implementation per kind of follow-up step; a kind the policy type has and this lacks is a compile error. */
export type FollowUpRegistry = { readonly [K in FollowUpStep['kind']]: FollowUpKind<Extract<FollowUpStep, { kind: K }>> };

/** The follow-up steps rollguard can run after a verified revert, by kind. */
export const FOLLOW_UP_STEPS: FollowUpRegistry = {
  restart,
  redis_flush: redisFlush,
  exec,
  http,
};
