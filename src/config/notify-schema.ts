import cron from 'node-cron';
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** Each secret may be given as `${ENV}` in the field itself or as a path in `<field>_file`, never literally. */
export const SECRET_FIELDS = {
  email: ['smtp_url'],
  pagerduty: ['routing_key'],
  slack: ['webhook_url'],
  webhook: ['secret'],
} as const;

const name = z.string().min(1);
const url = z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });
const secretText = z.string().min(1);
const filePath = z.string().min(1).describe('Path of a file holding the secret (relative to the policy file).');

const email = z
  .strictObject({
    smtp_url: secretText.refine((u) => /^smtps?:\/\/[^/]+/.test(u), { message: 'expected smtp://host:port or smtps://host:port' }).optional().describe('smtp://user:pass@host:587 or smtps://…; give it as ${ENV} or smtp_url_file.'),
    smtp_url_file: filePath.optional(),
    from: z.string().min(3).describe('Sender address.'),
    to: z.array(z.string().min(3)).min(1).describe('Recipients.'),
  })
  .describe('Email over SMTP: plain text and HTML with an inline chart.');

const pagerduty = z
  .strictObject({
    routing_key: secretText.optional().describe('Events API v2 integration key; ${ENV} or routing_key_file.'),
    routing_key_file: filePath.optional(),
    url: url.default('https://events.pagerduty.com/v2/enqueue').describe('Events API endpoint (overridable for tests and proxies).'),
  })
  .describe('PagerDuty Events API v2: one incident per deployment, resolved when the revert is verified.');

const slack = z
  .strictObject({
    webhook_url: secretText.optional().describe('Slack incoming-webhook URL; ${ENV} or webhook_url_file.'),
    webhook_url_file: filePath.optional(),
  })
  .describe('Slack incoming webhook with blocks.');

const webhook = z
  .strictObject({
    url: url.describe('Receives a JSON POST per event.'),
    secret: secretText.optional().describe('HMAC-SHA256 key of the signature; ${ENV} or secret_file. For `signature: standard`, a `whsec_…` secret is the key in base64; any other is used as it is.'),
    secret_file: filePath.optional(),
    signature: z.enum(['rollguard', 'standard']).default('rollguard')
      .describe('How requests are signed: `rollguard` (X-Rollguard-Signature, the default) or `standard` (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).'),
  })
  .describe('Generic JSON webhook, signed.');

export const channelSchema = z
  .strictObject({ email: email.optional(), pagerduty: pagerduty.optional(), slack: slack.optional(), webhook: webhook.optional() })
  .superRefine((c, ctx) => {
    const kinds = (Object.keys(SECRET_FIELDS) as (keyof typeof SECRET_FIELDS)[]).filter((k) => c[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of email, pagerduty, slack or webhook' });
      return;
    }
    const kind = kinds[0] as keyof typeof SECRET_FIELDS;
    const body = c[kind] as Record<string, unknown>;
    for (const field of SECRET_FIELDS[kind]) {
      const inline = body[field] !== undefined;
      const file = body[`${field}_file`] !== undefined;
      if (inline === file) ctx.addIssue({ code: 'custom', path: [kind], message: `set exactly one of ${field} or ${field}_file` });
    }
  })
  .describe('A notification channel: exactly one of email, pagerduty, slack or webhook.');

const channelList = z.array(name).min(1);

export const routesSchema = z
  .strictObject({
    P0: channelList.optional().describe('Channels for P0 events (and every ROLLBACK FAILED escalation).'),
    P1: channelList.optional().describe('Channels for P1 events (watch inconclusive, P1 rules).'),
    P2: channelList.optional().describe('Channels for P2 events (deployment passed, P2 rules).'),
    detected: channelList.optional().describe('Chat channels (slack or webhook) told of every deployment detected.'),
  })
  .describe('Which channels hear which severity. A service may override with its own `notify:`.');

export const serviceNotifySchema = z
  .strictObject({
    P0: channelList.optional().describe('Channels for this service\'s P0 events (ROLLBACK FAILED also goes to the top-level P0 routes).'),
    P1: channelList.optional().describe('Channels for this service\'s P1 events.'),
    P2: channelList.optional().describe('Channels for this service\'s P2 events.'),
  })
  .describe('This service\'s routes by severity; a severity not named here uses the top-level routes.');

export const escalationSchema = z
  .strictObject({ contacts: z.array(z.string().min(1)).min(1).describe('Who to call, as shown in ROLLBACK FAILED messages.') })
  .describe('The runbook\'s "Rollback Failed - Escalation" contacts.');

const timeout = z
  .string()
  .refine((t) => parseDuration(t) !== undefined, { message: 'expected a duration such as 500ms, 15s, 10m or 1h' })
  .transform((t) => parseDuration(t) as number);

export const maintenanceSchema = z
  .strictObject({
    file: z
      .strictObject({
        path: z.string().min(1).describe('File to write.'),
        content: z.string().default('System maintenance in progress.\n').describe('What to write into it.'),
      })
      .optional()
      .describe('Write this file (e.g. the page nginx serves in maintenance mode).'),
    command: z.array(z.string().min(1)).min(1).optional()
      .describe('Run this program with these arguments (no shell); ROLLGUARD_SERVICE and ROLLGUARD_DEPLOYMENT are set.'),
    timeout: timeout.default(30_000).describe('Give up on writing the file or running the command after this long (a duration; default 30s).'),
  })
  .superRefine((m, ctx) => {
    if ((m.file === undefined) === (m.command === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of file or command' });
  })
  .describe('Put up the maintenance page when a rollback fails (runbook: "Enable Maintenance Mode").');

export const digestSchema = z
  .strictObject({
    schedule: z.string().refine((s) => cron.validate(s), { message: 'expected a cron expression such as "0 8 * * *"' }).describe('When to send it, as a cron expression such as "0 8 * * *".'),
    timezone: z.string().optional().describe('IANA time zone of the schedule; the host\'s when absent.'),
    to: channelList.describe('Email channels that receive the digest.'),
  })
  .describe('Daily digest: deployments watched, rollbacks, inconclusive watches, pending holds.');

/**
 * What is wrong with a secret for Standard Webhooks signatures, or undefined: a `whsec_…` secret
 * is the key in base64 (as the spec serializes keys); any other non-empty secret is used as it is.
 * Never echoes the secret.
 */
export function standardWebhookSecretProblem(secret: string): string | undefined {
  if (!secret) return 'signature: standard needs a secret (${ENV} or secret_file)';
  if (!secret.startsWith('whsec_')) return undefined;
  const encoded = secret.slice('whsec_'.length);
  // Buffer.from(…, 'base64') skips what is not base64 instead of refusing it: checked first.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return 'the secret starts with whsec_ but the rest is not base64 (see standardwebhooks.com)';
  return Buffer.from(encoded, 'base64').length === 0 ? 'the secret\'s key after whsec_ is empty' : undefined;
}
