import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { isScalar, type Document, type Node } from 'yaml';
import { defaultWritesSecret } from './env-reference.js';
import type { PrometheusSettings } from './policy.js';
import { PROMETHEUS_SECRET_KEYS, type PrometheusFile } from './prometheus-schema.js';

type Report = (keys: (string | number)[], message: string) => void;

/** The first line of an OpenSSL error, without its `error:0480006C:` code prefix. */
function opensslText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n')[0] ?? message).replace(/^error:[0-9A-F]+:(?:[^:]*::)?/i, '');
}

/**
 * The typed Prometheus settings, with every `*_file` read relative to the policy file and the
 * PEM files checked now — an unreadable file, a CA that is not a certificate or a key that does
 * not match its certificate is a problem of the policy, reported with the others, not a query
 * that fails later. A secret file's value is its content without trailing newlines.
 */
export function toPrometheusSettings(p: PrometheusFile, policyFile: string, report: Report): PrometheusSettings {
  const base = path.dirname(path.resolve(policyFile));
  const read = (key: string[], ref: string): string | undefined => {
    try {
      return readFileSync(path.resolve(base, ref), 'utf8');
    } catch (err) {
      report(['prometheus', ...key], `cannot read ${ref}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      return undefined;
    }
  };
  const secret = (key: string[], inline: string | undefined, ref: string | undefined): string =>
    inline ?? (ref === undefined ? '' : (read(key, ref) ?? '').replace(/[\r\n]+$/, ''));

  const settings: PrometheusSettings = { url: p.url.replace(/\/+$/, ''), timeoutMs: p.timeout };
  if (Object.keys(p.headers).length) settings.headers = { ...p.headers };
  if (p.external_url !== undefined) settings.externalUrl = p.external_url.replace(/\/+$/, '');
  if (p.basic_auth) {
    const b = p.basic_auth;
    settings.basicAuth = { username: b.username, password: secret(['basic_auth', 'password_file'], b.password, b.password_file) };
  }
  if (p.authorization) {
    const a = p.authorization;
    settings.authorization = { type: a.type, credentials: secret(['authorization', 'credentials_file'], a.credentials, a.credentials_file) };
  }
  if (p.tls_config) settings.tls = readTls(p.tls_config, read, report);
  return settings;
}

function readTls(t: NonNullable<PrometheusFile['tls_config']>, read: (key: string[], ref: string) => string | undefined, report: Report): PrometheusSettings['tls'] {
  const tls: NonNullable<PrometheusSettings['tls']> = { insecureSkipVerify: t.insecure_skip_verify };
  if (t.server_name !== undefined) tls.serverName = t.server_name;
  if (t.ca_file !== undefined) {
    const ca = read(['tls_config', 'ca_file'], t.ca_file);
    if (ca !== undefined) {
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) report(['prometheus', 'tls_config', 'ca_file'], `${t.ca_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
      else {
        try {
          createSecureContext({ ca });
          tls.ca = ca;
        } catch (err) {
          report(['prometheus', 'tls_config', 'ca_file'], `${t.ca_file}: not a usable CA certificate: ${opensslText(err)}`);
        }
      }
    }
  }
  if (t.cert_file !== undefined && t.key_file !== undefined) {
    const cert = read(['tls_config', 'cert_file'], t.cert_file);
    const key = read(['tls_config', 'key_file'], t.key_file);
    if (cert !== undefined && key !== undefined) {
      try {
        createSecureContext({ cert });
      } catch (err) {
        report(['prometheus', 'tls_config', 'cert_file'], `${t.cert_file}: not a usable PEM certificate: ${opensslText(err)}`);
        return tls;
      }
      try {
        createSecureContext({ cert, key });
        Object.assign(tls, { cert, key });
      } catch (err) {
        report(['prometheus', 'tls_config', 'key_file'], `${t.key_file}: not the unencrypted PEM key of ${t.cert_file}: ${opensslText(err)}`);
      }
    }
  }
  return tls;
}

/**
 * The Prometheus secrets written in the policy: a literal password or token, or a `${VAR:-default}`
 * whose default is one. Only `${ENV}` (or the `_file` key) keeps them out of the file.
 */
export function prometheusSecretProblems(doc: Document, fromEnv: ReadonlyMap<Node, string>): { keys: string[]; message: string }[] {
  const problems: { keys: string[]; message: string }[] = [];
  for (const place of PROMETHEUS_SECRET_KEYS) {
    const keys = [...place];
    const node = doc.getIn(keys, true) as Node | undefined;
    if (!isScalar(node)) continue;
    const written = fromEnv.get(node);
    if (written !== undefined && !defaultWritesSecret(written, false)) continue;
    const field = keys[keys.length - 1] as string;
    problems.push({
      keys,
      message: written === undefined
        ? `a secret must not be written in the policy; use "\${ENV_VAR}" or ${field}_file`
        : `a default for a secret would write it in the policy; use "\${ENV_VAR}" or ${field}_file`,
    });
  }
  return problems;
}
