import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** PEM files made by `makeCertificates`, by path. */
export interface TestCertificates {
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** A CA that signed nothing here: a client trusting only it refuses the server. */
  otherCa: string;
  /** The server's certificate for localhost and 127.0.0.1, and its key. */
  serverCert: string;
  serverKey: string;
  /** A client certificate (clientAuth) for rollguard, and its key. */
  clientCert: string;
  clientKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new P-256 key and a certificate for it, signed by `ca` (or self-signed as a CA when `ca` is absent). */
function issue(dir: string, name: string, subject: string, extensions: string, ca?: { cert: string; key: string }): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`];
  if (!ca) {
    openssl(dir, 'req', '-x509', ...key, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    return;
  }
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, 'req', '-new', ...key, '-out', `${name}.csr`, '-subj', subject);
  openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
}

/**
 * A test CA with a server certificate (localhost, 127.0.0.1) and a client certificate, plus an
 * unrelated CA, made with `openssl` in `dir` (a temporary directory of the caller's).
 */
export function makeCertificates(dir: string): TestCertificates {
  issue(dir, 'ca', '/CN=rollguard test CA', '');
  issue(dir, 'other-ca', '/CN=rollguard other test CA', '');
  const ca = { cert: 'ca.crt', key: 'ca.key' };
  issue(dir, 'server', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n', ca);
  issue(dir, 'client', '/CN=rollguard', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n', ca);
  const at = (file: string): string => path.join(dir, file);
  return {
    ca: at('ca.crt'), otherCa: at('other-ca.crt'),
    serverCert: at('server.crt'), serverKey: at('server.key'),
    clientCert: at('client.crt'), clientKey: at('client.key'),
  };
}
