// URLs from the policy (Prometheus, HTTP checks, channels) may carry credentials: a user and
// password before the host, or a token in the query string. The clients that call them need the
// credentials; every form shown to people (messages, logs, status, history, CLI output) goes
// through these functions, so it lives in model/ where every folder can reach it.

/** `scheme://` followed by userinfo: everything of the authority up to its last `@`. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i;

/**
 * Query or fragment parameters whose value is taken for a secret: names containing token,
 * secret, passw, pwd, auth, credential, session, signature or api key, and the bare names
 * `key`, `sig` and `pass` (Google API keys, Azure SAS signatures).
 */
const SECRET_PARAM = /token|secret|passw|pwd|auth|credential|session|signature|api[-_]?key|^(?:key|sig|pass)$/i;

/** Every `scheme://…` in a text, up to whitespace or a quote or bracket that ends it. */
const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi;

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** `a=1&token=x` → `a=1&token=redacted`; pairs without `=` and other names are kept as written. */
function redactParams(params: string): string {
  return params.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0 || !SECRET_PARAM.test(decodeName(pair.slice(0, eq)))) return pair;
    return `${pair.slice(0, eq)}=redacted`;
  }).join('&');
}

/**
 * The URL as it may be shown: without its userinfo (`http://user:pass@host` → `http://host`) and
 * with the value of every query or fragment parameter named like a secret (`?token=…`,
 * `&api_key=…`, `&sig=…`) replaced by `redacted`. Anything else is kept exactly as written, so
 * a URL without credentials comes back unchanged.
 */
export function redactUrl(url: string): string {
  let out = url.replace(USERINFO, '$1');
  const q = out.search(/[?#]/);
  if (q < 0) return out;
  const hash = out.indexOf('#', q);
  const query = out[q] === '?' ? out.slice(q + 1, hash < 0 ? undefined : hash) : undefined;
  const fragment = hash < 0 ? undefined : out.slice(hash + 1);
  out = out.slice(0, q);
  if (query !== undefined) out += `?${redactParams(query)}`;
  if (fragment !== undefined) out += `#${redactParams(fragment)}`;
  return out;
}

/** Every URL in a free text (an error message, a stack) redacted as `redactUrl` does. */
export function redactUrlsIn(text: string): string {
  return text.includes('://') ? text.replace(URL_IN_TEXT, redactUrl) : text;
}
