/**
 * Signs action assertions (model/identity.ts) with the identity server's Ed25519 private key
 * (node:crypto). The verifier is pure and runs in the workflow; this side runs only in the server.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ASSERTION_TYPE, MAX_ASSERTION_TTL_SECONDS, type ActionClaims, type IdentityAction } from '../model/identity.ts';

export interface AssertionRequest {
  sub: string;
  action: IdentityAction;
  releaseId: string;
  namespace: string;
  step?: number | undefined;
  attempt?: number | undefined;
  /** approve-retirement, abort-retirement: the API version. */
  version?: string | undefined;
}

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

/** A compact JWS over `claims`, signed with `key` (Ed25519). */
export function signClaims(claims: ActionClaims, key: KeyObject): string {
  const head = `${b64url(JSON.stringify({ alg: 'EdDSA', typ: ASSERTION_TYPE }))}.${b64url(JSON.stringify(claims))}`;
  return `${head}.${b64url(sign(null, Buffer.from(head), key))}`;
}

export class AssertionSigner {
  readonly #key: KeyObject;
  readonly ttlSeconds: number;
  /** The public key to pin in the worker's configuration (PEM SPKI). */
  readonly publicKeyPem: string;

  constructor(key: KeyObject, ttlSeconds = 120) {
    if (key.asymmetricKeyType !== 'ed25519' || key.type !== 'private') throw new Error('the identity key must be an Ed25519 private key');
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_ASSERTION_TTL_SECONDS) throw new Error(`--ttl: 1 to ${MAX_ASSERTION_TTL_SECONDS} seconds`);
    this.#key = key;
    this.ttlSeconds = ttlSeconds;
    this.publicKeyPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  }

  /** Reads a PEM (PKCS#8) Ed25519 private key, e.g. from `openssl genpkey -algorithm ed25519`. */
  static fromFile(path: string, ttlSeconds?: number): AssertionSigner {
    return new AssertionSigner(createPrivateKey(readFileSync(path)), ttlSeconds);
  }

  sign(req: AssertionRequest, nowMs = Date.now()): { assertion: string; claims: ActionClaims } {
    const iat = Math.floor(nowMs / 1000);
    const claims: ActionClaims = {
      sub: req.sub,
      action: req.action,
      releaseId: req.releaseId,
      namespace: req.namespace,
      ...(req.step !== undefined ? { step: req.step } : {}),
      ...(req.attempt !== undefined ? { attempt: req.attempt } : {}),
      ...(req.version !== undefined ? { version: req.version } : {}),
      iat,
      exp: iat + this.ttlSeconds,
      nonce: randomBytes(16).toString('base64url'),
    };
    return { assertion: signClaims(claims, this.#key), claims };
  }
}
