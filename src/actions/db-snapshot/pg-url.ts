// PostgreSQL tools show their arguments to every user of the host (`ps`), so a password never
// goes on a command line: it is taken out of the URL here and handed over through PGPASSWORD.

/** `scheme://` and the userinfo before the authority's last `@`. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Splits a `postgresql://` URL into the URL without its password (the user, hosts, database and
 * other parameters kept, so libpq connects exactly as before) and the password, percent-decoded,
 * from the userinfo (`user:pw@`) or a `password=` parameter (which libpq prefers when both are
 * given). An empty password counts as none.
 */
export function splitPassword(url: string): { url: string; password?: string } {
  let password: string | undefined;
  let out = url.replace(USERINFO, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    if (colon < 0) return `${scheme}${userinfo}@`;
    password = decode(userinfo.slice(colon + 1));
    const user = userinfo.slice(0, colon);
    return user ? `${scheme}${user}@` : scheme;
  });
  const q = out.indexOf('?');
  if (q >= 0) {
    const kept = out.slice(q + 1).split('&').filter((pair) => {
      const eq = pair.indexOf('=');
      if (decode(pair.slice(0, eq < 0 ? pair.length : eq)) !== 'password') return true;
      password = eq < 0 ? '' : decode(pair.slice(eq + 1));
      return false;
    });
    out = kept.length ? `${out.slice(0, q)}?${kept.join('&')}` : out.slice(0, q);
  }
  return password ? { url: out, password } : { url: out };
}
