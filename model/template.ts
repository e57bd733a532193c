/**
 * Argo's `{{args.name}}` templating for metric providers, with escaping that keeps every argument
 * a value: whatever an argument holds, it cannot change the structure of the text it is placed in.
 * Pure (no I/O): lint calls the `*Problems` functions on templates, activities call the `render*`
 * functions with resolved args (secrets included), so messages name arguments, never their values.
 *
 * Where an argument may stand, per kind of text:
 * - PromQL: only inside a double-quoted string literal. The value is escaped for PromQL's (Go)
 *   string syntax; `{` and `}` become `\x7b`/`\x7d`. Inside a regex matcher (`=~"…"`, `!~"…"`) the
 *   value is also regex-quoted, so it matches itself literally and cannot widen the match.
 * - JSON text (a web provider `body`): only inside a JSON string; JSON-escaped.
 * - URL: only after the authority (path, query, fragment); percent-encoded as a URI component. Or
 *   the whole URL is one arg (Argo's `url: "{{args.secret-url}}"` from a Secret): the value is then
 *   the URL itself, checked as an http(s) URL after substitution; messages never show it.
 * - Header value: anywhere; a value that would put CR, LF or another control character into the
 *   header is refused.
 * Substitution is single-pass: placeholders inside substituted values are never expanded.
 */

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** `{{args.name}}` with optional spaces inside the braces, as Argo accepts. */
const ARG = /\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}/y;
/** Any other `{{…}}` is a placeholder we do not support (Argo's `{{metric…}}` forms are not implemented). */
const OTHER = /\{\{[^}]*\}\}/y;

export type TextKind = 'promql' | 'json' | 'url' | 'header';

export interface ArgRef {
  name: string;
  start: number;
  end: number;
  /** Inside a double-quoted string literal (PromQL, JSON) or after the URL authority. */
  allowed: boolean;
  /** PromQL only: the string is the right-hand side of `=~` or `!~`. */
  regex: boolean;
}

interface Scan {
  refs: ArgRef[];
  problems: string[];
}

/** Every arg name a text refers to (for "uses an arg the template does not declare"). */
export function argNames(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}/g)) names.add(m[1] as string);
  return [...names];
}

function placeholderAt(text: string, i: number): { name?: string; end: number } | undefined {
  if (text[i] !== '{' || text[i + 1] !== '{') return undefined;
  ARG.lastIndex = i;
  const arg = ARG.exec(text);
  if (arg) return { name: arg[1] as string, end: i + arg[0].length };
  OTHER.lastIndex = i;
  const other = OTHER.exec(text);
  if (other) return { end: i + other[0].length };
  return undefined;
}

/** True when the string literal opening at `quote` is the right-hand side of a regex matcher. */
function isRegexMatcher(text: string, quote: number): boolean {
  let j = quote - 1;
  while (j >= 0 && /\s/.test(text[j] as string)) j--;
  return text[j] === '~' && (text[j - 1] === '=' || text[j - 1] === '!');
}

/**
 * Scans PromQL or JSON text for placeholders, tracking string literals and (PromQL) comments.
 * PromQL strings: "…" and '…' with backslash escapes, `…` raw; `#` starts a comment to the end of the line.
 */
function scanQuoted(text: string, kind: 'promql' | 'json'): Scan {
  const refs: ArgRef[] = [];
  const problems: string[] = [];
  type State = 'code' | 'dq' | 'sq' | 'raw' | 'comment';
  let state: State = 'code';
  let regex = false;
  let openedAt = -1;
  let i = 0;
  while (i < text.length) {
    const ph = placeholderAt(text, i);
    if (ph) {
      if (ph.name === undefined) {
        problems.push(`unsupported placeholder ${text.slice(i, ph.end)} (only {{args.NAME}} is substituted)`);
      } else {
        const allowed = state === 'dq';
        refs.push({ name: ph.name, start: i, end: ph.end, allowed, regex: allowed && regex });
        if (!allowed) {
          const where = state === 'code' ? 'outside a string literal' : state === 'comment' ? 'inside a comment' : state === 'sq' ? "inside a single-quoted string" : 'inside a raw (backtick) string';
          problems.push(`{{args.${ph.name}}} is ${where}: an arg may only be placed inside a double-quoted string, e.g. ${kind === 'promql' ? `{job="{{args.${ph.name}}}"}` : `"{{args.${ph.name}}}"`}`);
        }
      }
      i = ph.end;
      continue;
    }
    const c = text[i] as string;
    switch (state) {
      case 'code':
        if (c === '"') {
          state = 'dq';
          openedAt = i;
          regex = kind === 'promql' && isRegexMatcher(text, i);
        } else if (kind === 'promql' && c === "'") {
          state = 'sq';
          openedAt = i;
        } else if (kind === 'promql' && c === '`') {
          state = 'raw';
          openedAt = i;
        } else if (kind === 'promql' && c === '#') state = 'comment';
        break;
      case 'dq':
      case 'sq':
        if (c === '\\') i++; // the escaped character, whatever it is
        else if (c === (state === 'dq' ? '"' : "'")) state = 'code';
        else if (c === '\n') problems.push(`unterminated string literal opened at offset ${openedAt}`);
        break;
      case 'raw':
        if (c === '`') state = 'code';
        break;
      case 'comment':
        if (c === '\n') state = 'code';
        break;
    }
    i++;
  }
  if (state === 'dq' || state === 'sq' || state === 'raw') problems.push(`unterminated string literal opened at offset ${openedAt}`);
  return { refs, problems };
}

/** The arg name when the whole URL is one `{{args.NAME}}` (surrounding spaces allowed), else undefined. */
export function wholeUrlArg(url: string): string | undefined {
  const m = /^\s*\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}\s*$/.exec(url);
  return m ? (m[1] as string) : undefined;
}

function scanUrl(url: string): Scan {
  const refs: ArgRef[] = [];
  const problems: string[] = [];
  const whole = wholeUrlArg(url);
  if (whole !== undefined) return { refs: [{ name: whole, start: 0, end: url.length, allowed: true, regex: false }], problems };
  const scheme = url.indexOf('://');
  let authorityEnd = url.length;
  if (scheme >= 0) {
    const rest = url.slice(scheme + 3).search(/[/?#]/);
    authorityEnd = rest < 0 ? url.length : scheme + 3 + rest;
  }
  let i = 0;
  while (i < url.length) {
    const ph = placeholderAt(url, i);
    if (!ph) {
      i++;
      continue;
    }
    if (ph.name === undefined) problems.push(`unsupported placeholder ${url.slice(i, ph.end)} (only {{args.NAME}} is substituted)`);
    else {
      const allowed = scheme >= 0 && i >= authorityEnd;
      refs.push({ name: ph.name, start: i, end: ph.end, allowed, regex: false });
      if (!allowed) problems.push(`{{args.${ph.name}}} is in the scheme or host of the URL: args may only be placed in its path or query`);
    }
    i = ph.end;
  }
  return { refs, problems };
}

function scanHeader(value: string): Scan {
  const refs: ArgRef[] = [];
  const problems: string[] = [];
  let i = 0;
  while (i < value.length) {
    const ph = placeholderAt(value, i);
    if (!ph) {
      i++;
      continue;
    }
    if (ph.name === undefined) problems.push(`unsupported placeholder ${value.slice(i, ph.end)} (only {{args.NAME}} is substituted)`);
    else refs.push({ name: ph.name, start: i, end: ph.end, allowed: true, regex: false });
    i = ph.end;
  }
  return { refs, problems };
}

function scan(kind: TextKind, text: string): Scan {
  switch (kind) {
    case 'promql':
    case 'json':
      return scanQuoted(text, kind);
    case 'url':
      return scanUrl(text);
    case 'header':
      return scanHeader(text);
  }
}

/** Problems with where a template places its args (lint reports them; rendering refuses them). */
export function templateProblems(kind: TextKind, text: string): string[] {
  return scan(kind, text).problems;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * Escapes a value for the inside of a PromQL double-quoted string. Only characters that are plain in
 * a Go string literal pass unchanged; `"`, `\`, control characters and newlines are escaped, and so
 * are `{` and `}`, so the rendered query holds no brace that the template did not.
 */
export function escapePromQLString(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '{' || ch === '}' || code < 0x20 || code === 0x7f) out += `\\x${hex2(code)}`;
    else if (code === 0x2028 || code === 0x2029) out += `\\u${code.toString(16)}`;
    else out += ch;
  }
  return out;
}

/** RE2's QuoteMeta: the value as a regex that matches exactly itself. */
export function quoteRegex(value: string): string {
  return value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** Escapes a value for the inside of a JSON string (braces as \u escapes, like PromQL). */
export function escapeJsonString(value: string): string {
  return JSON.stringify(value)
    .slice(1, -1)
    .replace(/[{}\u2028\u2029]/g, (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`);
}

function lookup(args: Readonly<Record<string, string>>, name: string): string {
  if (!Object.hasOwn(args, name)) throw new TemplateError(`arg "${name}" has no value`);
  return args[name] as string;
}

function render(kind: TextKind, text: string, args: Readonly<Record<string, string>>, encode: (value: string, ref: ArgRef) => string): string {
  const { refs, problems } = scan(kind, text);
  if (problems.length > 0) throw new TemplateError(problems.join('; '));
  let out = '';
  let at = 0;
  for (const ref of refs) {
    out += text.slice(at, ref.start) + encode(lookup(args, ref.name), ref);
    at = ref.end;
  }
  return out + text.slice(at);
}

/** Renders a PromQL template; throws {@link TemplateError} for a misplaced arg or one without a value. */
export function renderPromQL(query: string, args: Readonly<Record<string, string>>): string {
  return render('promql', query, args, (v, ref) => escapePromQLString(ref.regex ? quoteRegex(v) : v));
}

/** Renders JSON text whose args stand inside JSON strings. */
export function renderJsonText(text: string, args: Readonly<Record<string, string>>): string {
  return render('json', text, args, (v) => escapeJsonString(v));
}

/** Renders a URL whose args stand in its path or query; values are percent-encoded. A URL that is one arg is that arg's value, which must be an http(s) URL. */
export function renderUrl(url: string, args: Readonly<Record<string, string>>): string {
  const whole = wholeUrlArg(url);
  if (whole !== undefined) {
    const value = lookup(args, whole).trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(value);
    } catch {
      parsed = undefined;
    }
    // The value may come from a Secret: the message names the arg, never the value.
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new TemplateError(`arg "${whole}" is the whole URL but does not hold an http(s) URL`);
    return parsed.href;
  }
  return render('url', url, args, (v, ref) => {
    const encoded = encodeURIComponent(v);
    // "." and ".." are path segments of their own (also percent-encoded): they would climb the path.
    if (/^(\.|%2e){1,2}$/i.test(encoded)) throw new TemplateError(`arg "${ref.name}" is "." or "..", which would change the URL path`);
    return encoded;
  });
}

/** Renders a header value; refuses a value that would put a control character (CR, LF, NUL …) into it. */
export function renderHeader(value: string, args: Readonly<Record<string, string>>): string {
  return render('header', value, args, (v, ref) => {
    const control = [...v].some((c) => {
      const code = c.codePointAt(0) as number;
      return (code < 0x20 && code !== 0x09) || code === 0x7f;
    });
    if (control) throw new TemplateError(`arg "${ref.name}" holds a control character (CR, LF …), which a header value cannot carry`);
    return v;
  });
}

/** Renders every string inside a JSON value (a web provider `jsonBody`); structure comes from the template. */
export function renderJsonValue(value: unknown, args: Readonly<Record<string, string>>): unknown {
  if (typeof value === 'string') return render('header', value, args, (v) => v);
  if (Array.isArray(value)) return value.map((v) => renderJsonValue(v, args));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderJsonValue(v, args)]));
  }
  return value;
}
