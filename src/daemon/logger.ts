import pino, { type Logger } from 'pino';

/** Field paths whose values never reach the log. */
export const REDACT_PATHS = [
  'password', '*.password', 'secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', '*.headers.authorization', 'routing_key', '*.routing_key', 'webhook_url', '*.webhook_url',
  'smtp_url', '*.smtp_url', 'databaseUrl', '*.databaseUrl', 'connectionString', '*.connectionString',
  'routingKey', '*.routingKey', 'webhookUrl', '*.webhookUrl', 'smtpUrl', '*.smtpUrl',
  'notifications.*.routingKey', 'notifications.*.webhookUrl', 'notifications.*.smtpUrl', 'notifications.*.secret',
];

/** JSON logs; a readable form when stdout is a terminal. */
export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stdout.isTTY;
  return pino({
    name: 'rollguard',
    level: opts.level ?? process.env.ROLLGUARD_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
