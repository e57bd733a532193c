/**
 * Redaction for text that leaves an activity (error and measurement messages, measurement values):
 * - userinfo in URLs (`https://user:pass@host` → `https://***@host`);
 * - credential-like query or form parameters (`token=…`, `access_token=…`, `api_key=…`, `password=…`,
 *   `X-Amz-Signature=…` …) → `token=***`;
 * - `Authorization: Bearer …` / `Basic …` fragments;
 * - and any of the given secret values wherever they appear (secretKeyRef args the activity resolved).
 * Pure: the analysis activity calls `redact(message, secretValues)` before recording anything.
 */

const CREDENTIAL_PARAMS = [
  'token', 'access_token', 'accesstoken', 'id_token', 'refresh_token', 'auth', 'auth_token', 'authorization',
  'api_key', 'apikey', 'api-key', 'key', 'secret', 'client_secret', 'password', 'passwd', 'pwd', 'pass',
  'sig', 'signature', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'x-goog-signature', 'credential', 'session',
];
const PARAM_RE = new RegExp(`([?&;,\\s"'](?:${CREDENTIAL_PARAMS.map((p) => p.replace(/[-]/g, '\\-')).join('|')})=)[^&#\\s"',;]*`, 'gi');
const USERINFO_RE = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*@/gi;
const AUTH_HEADER_RE = /\b((?:authorization\s*[:=]\s*)?(?:(?:bearer|basic)\s+)|authorization\s*[:=]\s*)[A-Za-z0-9._~+/=-]{6,}/gi;

/** Secret values shorter than this are not searched for (they would match ordinary words). */
const MIN_SECRET_LENGTH = 4;

export function redact(text: string, secretValues: Iterable<string> = []): string {
  let out = String(text);
  for (const secret of [...secretValues].filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join('***');
    // Also as the URL and JSON encodings would carry it.
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join('***');
    const json = JSON.stringify(secret).slice(1, -1);
    if (json !== secret) out = out.split(json).join('***');
  }
  return out.replace(USERINFO_RE, '$1***@').replace(PARAM_RE, '$1***').replace(AUTH_HEADER_RE, '$1***');
}

/** A measurement value with secrets redacted: strings are redacted, arrays and objects walked. */
export function redactValue<T>(value: T, secretValues: Iterable<string> = []): T {
  const secrets = [...secretValues];
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [redact(k, secrets), walk(x)]));
    return v;
  };
  return walk(value) as T;
}
