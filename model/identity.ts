/**
 * Proven identity for human actions (a release's approve, promote, abort, retry, override-freeze; an API version's
 * approve-retirement, abort-retirement): the assertion an identity server signs
 * (starters/identity-server.ts) and the pure check the workflow runs on it.
 *
 * An assertion is a compact JWS (RFC 7515) signed with Ed25519 (`alg: EdDSA`, RFC 8037):
 * `base64url(header).base64url(claims).base64url(signature)`. The claims bind one action on one
 * release (or one API version), for a few minutes:
 *   {sub, action, releaseId, namespace, step?, attempt?, version?, iat, exp, nonce}
 * It carries no secret: it may sit in an update payload and in workflow history.
 *
 * Workflow-safe: no Node built-ins, no clock (the time is passed in), deterministic. The signature
 * is checked with @noble/curves (pure JS, synchronous: update validators cannot await).
 */
import { ed25519 } from '@noble/curves/ed25519.js';

export const IDENTITY_ACTIONS = ['approve', 'promote', 'abort', 'retry', 'override-freeze', 'approve-retirement', 'abort-retirement'] as const;
export type IdentityAction = (typeof IDENTITY_ACTIONS)[number];

/** The API-version workflow's actions: they name the API's workflow as `releaseId` and bind a `version`. */
export function isRetirementAction(action: IdentityAction): action is 'approve-retirement' | 'abort-retirement' {
  return action === 'approve-retirement' || action === 'abort-retirement';
}

/** `typ` of the JWS header: an assertion is not a general-purpose token. */
export const ASSERTION_TYPE = 'glidepath-action+jwt';
/** The longest lifetime the verifier accepts (exp - iat), whatever the server signed. */
export const MAX_ASSERTION_TTL_SECONDS = 600;
/** Clock skew tolerated between the identity server and the workflow's time. */
export const CLOCK_SKEW_SECONDS = 60;
/** The most nonces a release remembers at once (those of unexpired assertions). */
export const MAX_REMEMBERED_NONCES = 256;

export interface ActionClaims {
  /** The proven identity: `system:serviceaccount:ns:name` or a user name from the TokenReview. */
  sub: string;
  action: IdentityAction;
  /** The release's workflow ID (for retirement actions: the API's, `api-<namespace>-<api>`). */
  releaseId: string;
  /** The release's Kubernetes namespace (where the server checked the caller's RBAC). */
  namespace: string;
  /** approve: the approval step. */
  step?: number;
  /** The release attempt (1, then +1 per retry). */
  attempt?: number;
  /** approve-retirement, abort-retirement: the API version whose retirement it is. */
  version?: string;
  /** Seconds since the epoch. */
  iat: number;
  exp: number;
  nonce: string;
}

/** `required`: every action needs a valid proof. `optional`: a proof, when sent, must be valid; without one the action counts, unproven. */
export type IdentityMode = 'required' | 'optional';

export interface IdentityPolicy {
  mode: IdentityMode;
  /** Ed25519 public keys of the identity server (PEM SPKI, or base64/base64url of the raw 32 bytes). Public, not secrets. */
  publicKeys: string[];
}

/** What the release expects of a proof right now. */
export interface ProofContext {
  action: IdentityAction;
  releaseId: string;
  namespace: string;
  /** The pending approval's step (approve). */
  step?: number | undefined;
  /** The release attempt (none for API versions). */
  attempt?: number | undefined;
  /** The API version a retirement action is for. */
  version?: string | undefined;
  /** The workflow's time, in milliseconds. */
  nowMs: number;
  /** Nonces of assertions this release has already accepted (see rememberNonce). */
  usedNonces?: readonly RememberedNonce[];
}

export type ProofResult = { ok: true; claims: ActionClaims } | { ok: false; why: string; /** Set when the signature is valid: who the proof says sent it. */ sub?: string };

export interface RememberedNonce {
  nonce: string;
  exp: number;
}

// ---- encoding ----------------------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** base64 or base64url (padding optional) to bytes; undefined if anything else is in it. */
export function base64ToBytes(text: string): Uint8Array | undefined {
  const s = text.replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (const ch of s) {
    const v = ch === '-' || ch === '+' ? 62 : ch === '_' || ch === '/' ? 63 : B64.indexOf(ch);
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  return out;
}

/** bytes to base64url without padding. */
export function bytesToBase64url(bytes: Uint8Array): string {
  const alphabet = `${B64}-_`;
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = i + 2 < bytes.length ? 4 : i + 1 < bytes.length ? 3 : 2;
    for (let c = 0; c < chars; c++) out += alphabet[(n >> (18 - 6 * c)) & 63];
  }
  return out;
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows it. */
const SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/** An Ed25519 public key from PEM (SPKI), base64 DER SPKI, or base64/base64url raw 32 bytes. */
export function parsePublicKey(text: string): Uint8Array | undefined {
  const pem = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(text);
  const bytes = base64ToBytes((pem ? pem[1]! : text).replace(/\s+/g, ''));
  if (!bytes) return undefined;
  if (bytes.length === 32) return bytes;
  if (bytes.length === 44 && SPKI_PREFIX.every((b, i) => bytes[i] === b)) return bytes.slice(12);
  return undefined;
}

// ---- policy ------------------------------------------------------------------------------------

/** Problems of an identity policy, each naming its field (empty when valid). */
export function identityPolicyProblems(policy: unknown, field = 'identity'): string[] {
  if (policy === null || typeof policy !== 'object') return [`${field}: expected {mode: required|optional, publicKeys: [...]}`];
  const { mode, publicKeys } = policy as Partial<IdentityPolicy>;
  const problems: string[] = [];
  if (mode !== 'required' && mode !== 'optional') problems.push(`${field}.mode: must be required or optional`);
  if (!Array.isArray(publicKeys) || publicKeys.length === 0) {
    problems.push(`${field}.publicKeys: at least one Ed25519 public key of the identity server`);
  } else {
    publicKeys.forEach((k, i) => {
      if (typeof k !== 'string' || !parsePublicKey(k)) problems.push(`${field}.publicKeys[${i}]: not an Ed25519 public key (PEM, or base64 of the 32 raw bytes)`);
    });
  }
  return problems;
}

// ---- verification ------------------------------------------------------------------------------

function decodeJson(part: string): unknown {
  const bytes = base64ToBytes(part);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
  } catch {
    return undefined;
  }
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** The claims if they have the assertion's shape, else why not. */
function claimsShape(value: unknown): ActionClaims | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'claims are not an object';
  const c = value as Record<string, unknown>;
  for (const k of ['sub', 'releaseId', 'namespace', 'nonce'] as const) {
    if (typeof c[k] !== 'string' || c[k] === '') return `claim ${k} missing`;
  }
  if (!IDENTITY_ACTIONS.includes(c.action as IdentityAction)) return 'claim action missing';
  if (!isInt(c.iat) || !isInt(c.exp)) return 'claims iat and exp must be whole seconds';
  if (c.step !== undefined && !isInt(c.step)) return 'claim step must be a whole number';
  if (c.attempt !== undefined && !isInt(c.attempt)) return 'claim attempt must be a whole number';
  if (c.version !== undefined && (typeof c.version !== 'string' || c.version === '')) return 'claim version must be a non-empty string';
  return c as unknown as ActionClaims;
}

/**
 * Checks a proof for one action on one release: an Ed25519 signature by one of `publicKeys`, then
 * the claims against `ctx` (action, release, namespace, step, attempt, lifetime, nonce). Pure.
 */
export function verifyActionProof(proof: unknown, publicKeys: readonly string[], ctx: ProofContext): ProofResult {
  if (typeof proof !== 'string' || proof.length > 8192) return { ok: false, why: 'proof must be a signed assertion (a compact JWS string)' };
  const parts = proof.split('.');
  if (parts.length !== 3) return { ok: false, why: 'proof is not a compact JWS (header.claims.signature)' };
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h) as { alg?: unknown; typ?: unknown; crit?: unknown } | undefined;
  if (!header || typeof header !== 'object') return { ok: false, why: 'proof header is not base64url JSON' };
  if (header.alg !== 'EdDSA') return { ok: false, why: `proof algorithm must be EdDSA, not ${JSON.stringify(header.alg) ?? 'none'}` };
  if (header.typ !== ASSERTION_TYPE) return { ok: false, why: `proof type must be ${ASSERTION_TYPE}` };
  if (header.crit !== undefined) return { ok: false, why: 'proof header has critical extensions this verifier does not know' };
  const signature = base64ToBytes(s);
  if (!signature || signature.length !== 64) return { ok: false, why: 'proof signature is not 64 base64url bytes' };
  const signed = new TextEncoder().encode(`${h}.${p}`);
  const keys = publicKeys.map(parsePublicKey).filter((k): k is Uint8Array => k !== undefined);
  const valid = keys.some((key) => {
    try {
      return ed25519.verify(signature, signed, key, { zip215: false });
    } catch {
      return false;
    }
  });
  if (!valid) return { ok: false, why: 'proof signature does not verify with the identity server key' };

  const claims = claimsShape(decodeJson(p));
  if (typeof claims === 'string') return { ok: false, why: `proof ${claims}` };
  const refuse = (why: string): ProofResult => ({ ok: false, why, sub: claims.sub });
  const now = Math.floor(ctx.nowMs / 1000);
  if (claims.action !== ctx.action) return refuse(`proof is for ${claims.action}, not ${ctx.action}`);
  if (claims.releaseId !== ctx.releaseId) return refuse(`proof is for release ${claims.releaseId}, not ${ctx.releaseId}`);
  if (claims.namespace !== ctx.namespace) return refuse(`proof is for namespace ${claims.namespace}, not ${ctx.namespace}`);
  if (claims.exp <= claims.iat || claims.exp - claims.iat > MAX_ASSERTION_TTL_SECONDS) return refuse(`proof lifetime must be 1 to ${MAX_ASSERTION_TTL_SECONDS} s`);
  if (claims.iat > now + CLOCK_SKEW_SECONDS) return refuse('proof is issued in the future');
  if (claims.exp + CLOCK_SKEW_SECONDS <= now) return refuse('proof has expired');
  if (ctx.action === 'approve') {
    if (claims.step === undefined) return refuse('an approval proof must name its step');
    if (claims.step !== ctx.step) return refuse(`proof approves step ${claims.step}, but step ${ctx.step ?? '(none)'} is pending`);
  } else if (claims.step !== undefined && claims.step !== ctx.step) {
    return refuse(`proof is for step ${claims.step}, the release is at step ${ctx.step ?? '(none)'}`);
  }
  if (claims.attempt !== undefined && claims.attempt !== ctx.attempt) return refuse(`proof is for attempt ${claims.attempt}, the release is at attempt ${ctx.attempt ?? '(none)'}`);
  if (claims.version !== ctx.version) {
    return refuse(claims.version === undefined ? `proof names no version; it must be for ${ctx.version}` : `proof is for version ${claims.version}, not ${ctx.version ?? '(none)'}`);
  }
  if (ctx.usedNonces?.some((n) => n.nonce === claims.nonce)) return refuse('proof has already been used');
  return { ok: true, claims };
}

/**
 * The nonces to keep after accepting `claims`: the unexpired ones plus this one, oldest dropped
 * beyond MAX_REMEMBERED_NONCES (an assertion lives at most MAX_ASSERTION_TTL_SECONDS, so a nonce
 * older than that can no longer be replayed anyway).
 */
export function rememberNonce(used: readonly RememberedNonce[], claims: ActionClaims, nowMs: number): RememberedNonce[] {
  const now = Math.floor(nowMs / 1000);
  const live = used.filter((n) => n.exp + CLOCK_SKEW_SECONDS > now);
  return [...live, { nonce: claims.nonce, exp: claims.exp }].slice(-MAX_REMEMBERED_NONCES);
}

/** What an action acts on, and the CLI command that sends it with a proof. */
function proofCommand(action: IdentityAction): [what: string, command: string] {
  return isRetirementAction(action) ? ['API', 'api'] : ['release', 'release'];
}

/**
 * Why a signal is refused under a policy that requires a proof. Signals are unauthenticated by
 * design: a handler never verifies the proof one carries (a flood of forged proofs would cost an
 * Ed25519 verification each, in one workflow task), so a proven action must come as an update,
 * whose validator verifies it.
 */
export function signalRefusal(action: IdentityAction): string {
  const [what, command] = proofCommand(action);
  return `${action}: this ${what} requires a proof of identity, and a signal's proof is not checked; send it as an update with the proof (glidepath ${command} ${action} with --token-file or $GLIDEPATH_IDENTITY_URL)`;
}

/** The identity an action is audited and judged under. */
export type ActionIdentity =
  | { accepted: true; by: string; proven: boolean; claims?: ActionClaims }
  | { accepted: false; why: string; /** For the audit trail: the proven identity, else `unauthenticated`. */ auditAs: string };

/**
 * The one call the workflow's action check makes: who sent `req`, proven or not, under `policy`.
 * - With a proof: it must verify (verifyActionProof); `by`, if sent, must equal the proven `sub`;
 *   the action counts as `sub`.
 * - Without one: refused under `required`; under `optional` (or no policy) it counts as the
 *   claimed `by`, unproven.
 */
export function actionIdentity(policy: IdentityPolicy | undefined, req: { by?: unknown; proof?: unknown }, ctx: ProofContext): ActionIdentity {
  const claimed = typeof req.by === 'string' && req.by.trim() !== '' ? req.by : undefined;
  if (req.proof === undefined) {
    if (policy?.mode === 'required') {
      const [what, command] = proofCommand(ctx.action);
      return { accepted: false, why: `${ctx.action}: this ${what} requires a proof of identity (glidepath ${command} ${ctx.action} with --token-file or $GLIDEPATH_IDENTITY_URL)`, auditAs: 'unauthenticated' };
    }
    if (!claimed) return { accepted: false, why: `${ctx.action}: payload must be {"by": "<identity>", "reason": "<text>"}`, auditAs: 'unauthenticated' };
    return { accepted: true, by: claimed, proven: false };
  }
  if (!policy) return { accepted: false, why: `${ctx.action}: a proof was sent, but no identity server key is configured`, auditAs: 'unauthenticated' };
  const result = verifyActionProof(req.proof, policy.publicKeys, ctx);
  if (!result.ok) return { accepted: false, why: `${ctx.action}: ${result.why}`, auditAs: result.sub ?? 'unauthenticated' };
  if (claimed !== undefined && claimed !== result.claims.sub) {
    return { accepted: false, why: `${ctx.action}: "by" is ${claimed}, but the proof is for ${result.claims.sub}`, auditAs: result.claims.sub };
  }
  return { accepted: true, by: result.claims.sub, proven: true, claims: result.claims };
}
