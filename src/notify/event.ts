// The notification event is a domain type in src/model/notification.ts (store/'s outbox keeps it,
// and store/ must not import notify/). Re-exported here so notify/'s own importers keep working.
export type { EventKind, EvidenceAction, EvidenceCriterion, EvidenceSample, NotificationEvent } from '../model/notification.js';
