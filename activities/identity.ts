/**
 * The worker's identity policy (model/identity.ts), from its environment, for the release workflow
 * to read once at start (a local activity: its result, public keys only, goes into history).
 *   GLIDEPATH_IDENTITY                  required | optional   (unset: no identity server; actions are claimed)
 *   GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE  the identity server's Ed25519 public key(s): PEM blocks, or one
 *                                       base64 raw key per line (several during a key rotation)
 * The operator sets these; a spec or a caller cannot. A malformed setting throws at worker start.
 */
import { readFileSync } from 'node:fs';
import { identityPolicyProblems, type IdentityMode, type IdentityPolicy } from '../model/identity.ts';

export const IDENTITY_MODE_ENV = 'GLIDEPATH_IDENTITY';
export const IDENTITY_PUBLIC_KEY_FILE_ENV = 'GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE';

/** The public keys of a key file: every PEM block, else every non-empty, non-comment line. */
export function readPublicKeys(text: string): string[] {
  const pems = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g);
  if (pems) return pems;
  return text.split(/\r?\n/).map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
}

/** The policy from the environment, undefined when GLIDEPATH_IDENTITY is unset; throws naming the variable. */
export function identityPolicyFromEnv(env: NodeJS.ProcessEnv): IdentityPolicy | undefined {
  const mode = env[IDENTITY_MODE_ENV];
  const file = env[IDENTITY_PUBLIC_KEY_FILE_ENV];
  if (mode === undefined || mode === '') {
    if (file) throw new Error(`${IDENTITY_PUBLIC_KEY_FILE_ENV} is set but ${IDENTITY_MODE_ENV} is not: set it to required or optional`);
    return undefined;
  }
  if (!file) throw new Error(`${IDENTITY_MODE_ENV}=${mode} needs ${IDENTITY_PUBLIC_KEY_FILE_ENV}: the identity server's public key (GET /v1/public-key)`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${IDENTITY_PUBLIC_KEY_FILE_ENV} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  const policy = { mode: mode as IdentityMode, publicKeys: readPublicKeys(text) };
  const problems = identityPolicyProblems(policy, 'identity').map((p) => p.replace(/^identity\.mode/, IDENTITY_MODE_ENV).replace(/^identity\.publicKeys/, IDENTITY_PUBLIC_KEY_FILE_ENV));
  if (problems.length > 0) throw new Error(problems.join('; '));
  return policy;
}

/** The activity the workflow calls (as a local activity) at start: the policy, or null when none is configured. */
export function createIdentityActivities(policy: IdentityPolicy | undefined) {
  return {
    async identityPolicy(): Promise<IdentityPolicy | null> {
      return policy ?? null;
    },
  };
}
