/**
 * Masking of secrets in everything the gateway prints: log lines (`gateway.started`, the store's
 * description), `config check` and `status`. One rule, here, used by all of them.
 *
 * URLs are parsed (WHATWG URL, as node-postgres' pg-connection-string parses DATABASE_URL), not
 * matched with a pattern: a password with an unencoded `@` ends at the last `@` before the host,
 * which a regular expression stopping at the first `@` got wrong.
 */

export const MASK = '***';

/**
 * Whether a query parameter or configuration key holds a secret. Passwords and passphrases
 * (`password`, `sslpassword` of libpq, `passwd`, `pwd`, `pass`), secrets (`secret`,
 * `client_secret`, `secretAccessKey`), tokens (`token`, `access_token`,
 * `X-Amz-Security-Token`), API keys, and request signatures (`X-Amz-Signature`, `sig`).
 * Not: `sslkey`, `sslcert`, `sslrootcert` (paths to files; the file is the secret, its name is
 * not), user names and access key IDs (identifiers; the key pair's secret half is masked).
 */
export function isSecretName(name: string): boolean {
  const n = name.toLowerCase().replace(/[-_.]/g, '');
  return (
    /pass(word|wd|phrase)/.test(n) ||
    n === 'pwd' ||
    n === 'pass' ||
    n.includes('secret') ||
    n.includes('token') ||
    n.endsWith('apikey') ||
    n.endsWith('signature') ||
    n === 'sig'
  );
}

/**
 * A URL with its password and every secret query parameter replaced by `***`
 * (`postgres://u:***@host/db?password=***`). A string that is not a URL is treated as a libpq
 * keyword/value string (`host=h password=p`), whose secret values are masked likewise.
 */
export function maskUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return maskKeywordValues(text);
  }
  let changed = false;
  if (url.password !== '') {
    url.password = MASK;
    changed = true;
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (isSecretName(name)) {
      url.searchParams.set(name, MASK);
      changed = true;
    }
  }
  return changed ? url.toString() : text;
}

/** libpq's `keyword=value` form (values may be single-quoted), and `k=v&k=v` query strings. */
function maskKeywordValues(text: string): string {
  return text.replace(
    /([\w.-]+)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)/g,
    (all: string, key: string, eq: string) => (isSecretName(key) ? `${key}${eq}${MASK}` : all),
  );
}

/**
 * A copy of a configuration (or any JSON value) fit to print: values of secret keys masked,
 * and every string that holds a URL (`index.url`, `store.endpoint`, notification targets)
 * passed through maskUrl.
 */
export function maskConfig(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key: string, v: unknown) => {
      if (typeof v !== 'string') return v;
      if (key !== '' && isSecretName(key)) return MASK;
      return v.includes('://') || v.includes('=') ? maskUrl(v) : v;
    }),
  );
}
