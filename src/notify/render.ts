/**
 * NotificationEvent → each channel's message. Pure: no I/O, no clock; the same event always renders
 * the same bytes, so a message sent from the outbox hours later says what was true when it happened.
 *
 * Every message leads with what happened and what rollguard did, then the evidence. Container names,
 * refs and action details come from Docker and are untrusted: HTML is escaped for email, `& < >` for
 * Slack mrkdwn (so a name cannot ping `<!channel>` or forge a link).
 */
export { shortImage, formatDuration } from './render-format.js';
export { headline } from './render-wording.js';
export { CHART_CID, emailSubject, escapeHtml, renderEmail, type EmailMessage } from './render-email.js';
export {
  PAGERDUTY_SEVERITY,
  PAGERDUTY_SUMMARY_MAX,
  renderPagerDuty,
  type PagerDutyResolve,
  type PagerDutySeverity,
  type PagerDutyTrigger,
} from './render-pagerduty.js';
export { escapeSlack, renderSlack, SLACK_LIMITS, type SlackBlock, type SlackMessage } from './render-slack.js';
export { renderWebhook, type WebhookBody } from './render-webhook.js';
