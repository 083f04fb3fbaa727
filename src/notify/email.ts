import type { Transporter } from 'nodemailer';
import type { Channel } from '../config/policy.js';
import { DeliveryError, scrub, type Delivery, type Notifier } from './notifier.js';
import { renderEmail } from './render.js';

type EmailChannel = Extract<Channel, { kind: 'email' }>;

/**
 * `smtp://user:pass@host:587` (STARTTLS when offered), `smtps://…:465` (TLS from the start);
 * `?requireTLS=true` refuses to send without TLS.
 */
export function smtpOptions(smtpUrl: string): { host: string; port: number; secure: boolean; requireTLS: boolean; auth?: { user: string; pass: string } } {
  const u = new URL(smtpUrl);
  const secure = u.protocol === 'smtps:';
  return {
    host: u.hostname,
    port: Number(u.port) || (secure ? 465 : 587),
    secure,
    requireTLS: u.searchParams.get('requireTLS') === 'true',
    auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
  };
}

/** Email over SMTP with nodemailer: a plain-text and an HTML part, and the chart inline as a PNG. */
export class EmailNotifier implements Notifier<EmailChannel> {
  readonly kind = 'email';
  private readonly transports = new Map<string, Transporter>();

  /**
   * One transport per channel and URL: a reload that rotates the SMTP credentials takes effect at
   * once. nodemailer (and the chart renderer) are loaded on the first email, not at start: a daemon
   * that never sends mail does not carry them (idle memory).
   */
  private async transport(channel: EmailChannel): Promise<Transporter> {
    const nodemailer = (await import('nodemailer')).default;
    const key = `${channel.name}\n${channel.smtpUrl}`;
    let t = this.transports.get(key);
    if (!t) {
      for (const [k, old] of this.transports) {
        if (k.startsWith(`${channel.name}\n`)) {
          old.close();
          this.transports.delete(k);
        }
      }
      t = nodemailer.createTransport({ ...smtpOptions(channel.smtpUrl), connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000, disableFileAccess: true, disableUrlAccess: true });
      this.transports.set(key, t);
    }
    return t;
  }

  async send(channel: EmailChannel, d: Delivery, signal: AbortSignal): Promise<void> {
    const { subject, text, html } = renderEmail(d.event);
    const renderChart = d.event.chart ? (await import('./chart.js')).renderChart : undefined;
    const attachments = d.event.chart && renderChart
      ? [{ filename: 'chart.png', content: renderChart(d.event.chart), contentType: 'image/png', cid: 'chart@rollguard', contentDisposition: 'inline' as const }]
      : [];
    if (signal.aborted) throw new DeliveryError('timed out before sending');
    try {
      await (await this.transport(channel)).sendMail({
        from: channel.from,
        to: channel.to,
        subject,
        text,
        html,
        attachments,
        headers: { 'X-Rollguard-Event': d.event.kind, 'X-Rollguard-Delivery': d.deliveryId },
      });
    } catch (err) {
      const e = err as { code?: string; responseCode?: number; message?: string };
      const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode !== 554 && e.code !== 'ECONNECTION';
      throw new DeliveryError(scrub(`SMTP ${e.code ?? ''} ${e.responseCode ?? ''} ${e.message ?? String(err)}`.replace(/\s+/g, ' ').trim(), channel), permanent);
    }
  }

  close(): void {
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
  }
}
