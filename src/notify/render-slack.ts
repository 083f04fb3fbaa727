/** NotificationEvent → Slack incoming-webhook message in Block Kit, within Slack's limits (see render.ts). */
import type { NotificationEvent } from './event.js';
import { actionLine, criterionLine, digestRows, sampleLine, samplesTitle } from './render-evidence.js';
import { clip, formatTime, graphLink, isHttpUrl, oneLine } from './render-format.js';
import { escalationLines, facts, headline, whatRollguardDid } from './render-wording.js';

type PlainText = { type: 'plain_text'; text: string; emoji?: boolean };
type Mrkdwn = { type: 'mrkdwn'; text: string };
export type SlackBlock =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text: Mrkdwn; fields?: undefined }
  | { type: 'section'; fields: Mrkdwn[]; text?: undefined }
  | { type: 'context'; elements: Mrkdwn[] }
  | { type: 'actions'; elements: { type: 'button'; text: PlainText; url: string; action_id: string }[] }
  | { type: 'divider' };

export interface SlackMessage { text: string; blocks: SlackBlock[] }

/** Block Kit limits (docs.slack.dev/reference/block-kit). */
export const SLACK_LIMITS = { blocks: 50, headerText: 150, sectionText: 3000, fields: 10, fieldText: 2000, buttonText: 75, url: 3000, contextElements: 10 } as const;

/** Slack's control characters; escaping them keeps untrusted names from forming mentions or links. */
export function escapeSlack(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Clips already-escaped mrkdwn without leaving half an entity behind. */
function clipMrkdwn(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${clip(s, max).slice(0, -1).replace(/&[a-z]*$/, '')}…`;
}

/** A titled code block of lines that keeps the newest lines that fit in one section. */
function codeSection(title: string, lines: string[]): SlackBlock {
  const head = `*${escapeSlack(title)}*\n`;
  const budget = SLACK_LIMITS.sectionText - head.length - 8;
  const kept: string[] = [];
  let used = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = escapeSlack((lines[i] as string).replace(/`/g, "'"));
    const omitted = `… ${i + 1} earlier omitted`;
    if (used + line.length + 1 + omitted.length + 1 > budget) {
      kept.unshift(omitted);
      break;
    }
    kept.unshift(line);
    used += line.length + 1;
  }
  return { type: 'section', text: { type: 'mrkdwn', text: clipMrkdwn(`${head}\`\`\`${kept.join('\n')}\`\`\``, SLACK_LIMITS.sectionText) } };
}

function mrkdwnSection(text: string): SlackBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: clipMrkdwn(text, SLACK_LIMITS.sectionText) } };
}

export function renderSlack(e: NotificationEvent): SlackMessage {
  const blocks: SlackBlock[] = [];
  const icon = e.kind === 'rollback_failed' ? '🚨 ' : e.kind === 'rollback_succeeded' || e.kind === 'deployment_passed' ? '✅ ' : e.kind === 'rollback_started' ? '⏪ ' : '';
  blocks.push({ type: 'header', text: { type: 'plain_text', text: clip(oneLine(`${icon}${headline(e)}`), SLACK_LIMITS.headerText), emoji: true } });
  if (e.kind === 'rollback_failed') {
    const [first, ...rest] = escalationLines(e);
    // The runbook's block: first line bold, then its fields as `*Label:* value`.
    blocks.push(mrkdwnSection([`*${escapeSlack(first as string)}*`, ...rest.map((l) => l.replace(/^([^:]+):(.*)$/, (_m, k: string, v: string) => `*${escapeSlack(k)}:*${escapeSlack(v)}`))].join('\n')));
  }
  blocks.push(mrkdwnSection([`*${escapeSlack(whatRollguardDid(e))}*`, e.summary ? escapeSlack(e.summary) : ''].filter(Boolean).join('\n')));
  const fields = facts(e)
    .filter(([k]) => k !== 'Deployed at')
    .slice(0, SLACK_LIMITS.fields)
    .map(([k, v]): Mrkdwn => ({ type: 'mrkdwn', text: clipMrkdwn(`*${escapeSlack(k)}*\n${escapeSlack(v)}`, SLACK_LIMITS.fieldText) }));
  if (fields.length) blocks.push({ type: 'section', fields });
  if (e.digest) {
    blocks.push({ type: 'section', fields: digestRows(e.digest).slice(0, SLACK_LIMITS.fields).map(([k, v]) => ({ type: 'mrkdwn', text: `*${escapeSlack(k)}*\n${escapeSlack(v)}` })) });
  }
  if (e.samples?.length) blocks.push(codeSection(samplesTitle(e), e.samples.map(sampleLine)));
  if (e.actions?.length) blocks.push(codeSection('Actions', e.actions.map(actionLine)));
  if (e.criteria?.length) blocks.push(codeSection('Recovery criteria', e.criteria.map(criterionLine)));
  const graph = graphLink(e);
  if (graph && isHttpUrl(graph) && graph.length <= SLACK_LIMITS.url) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Prometheus graph' }, url: graph, action_id: 'rollguard-graph' }] });
  }
  const context = [`${escapeSlack(formatTime(e.at))} · ${e.severity} · ${e.kind}`];
  if (e.deployment) context.push(`deployment #${e.deployment.id} · ${escapeSlack(e.deployment.container)}`);
  blocks.push({ type: 'context', elements: context.slice(0, SLACK_LIMITS.contextElements).map((text) => ({ type: 'mrkdwn', text: clipMrkdwn(text, SLACK_LIMITS.sectionText) })) });

  const fallback = e.kind === 'rollback_failed' && e.escalation?.length ? `${headline(e)} — escalate: ${e.escalation.join(', ')}` : headline(e);
  return { text: clipMrkdwn(escapeSlack(`[rollguard] ${e.severity} ${oneLine(fallback)}`), SLACK_LIMITS.sectionText), blocks: capBlocks(blocks) };
}

/** Keeps the first blocks (what happened comes first) and says how many were dropped. */
function capBlocks(blocks: SlackBlock[]): SlackBlock[] {
  if (blocks.length <= SLACK_LIMITS.blocks) return blocks;
  const kept = blocks.slice(0, SLACK_LIMITS.blocks - 1);
  return [...kept, { type: 'context', elements: [{ type: 'mrkdwn', text: `… ${blocks.length - kept.length} more blocks omitted` }] }];
}
