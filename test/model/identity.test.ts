/**
 * Action assertions (model/identity.ts): real Ed25519 keys from node:crypto sign, the pure verifier
 * (@noble/curves) checks. Forged, tampered, expired, replayed and misdirected proofs fail; without a
 * proof, `required` refuses and `optional` accepts the claimed name, unproven.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { actionIdentity, base64ToBytes, bytesToBase64url, identityPolicyProblems, parsePublicKey, rememberNonce, verifyActionProof, MAX_REMEMBERED_NONCES, type ActionClaims, type IdentityPolicy, type ProofContext } from '../../model/identity.ts';
import { AssertionSigner, signClaims } from '../../starters/identity-signer.ts';

const server = generateKeyPairSync('ed25519');
const attacker = generateKeyPairSync('ed25519');
const signer = new AssertionSigner(server.privateKey, 120);
const pem = signer.publicKeyPem;
const raw = createPublicKey(server.privateKey).export({ format: 'jwk' }).x!; // base64url of the 32 raw bytes
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const policy: IdentityPolicy = { mode: 'required', publicKeys: [pem] };
const ctx: ProofContext = { action: 'approve', releaseId: 'release-shop-web', namespace: 'shop', step: 2, attempt: 1, nowMs: NOW };
const bob = (over: Partial<Parameters<AssertionSigner['sign']>[0]> = {}, nowMs = NOW) =>
  signer.sign({ sub: 'system:serviceaccount:shop:bob', action: 'approve', releaseId: 'release-shop-web', namespace: 'shop', step: 2, attempt: 1, ...over }, nowMs);

describe('verifyActionProof', () => {
  test('a proof signed by the server key verifies and yields its claims (PEM and raw key forms)', () => {
    const { assertion, claims } = bob();
    for (const key of [pem, raw]) {
      const r = verifyActionProof(assertion, [key], ctx);
      assert.deepEqual(r, { ok: true, claims });
    }
    assert.equal(claims.exp - claims.iat, 120);
  });

  test('a proof signed by another key (forged) fails, and names no identity', () => {
    const claims: ActionClaims = { ...bob().claims, nonce: 'x' };
    const r = verifyActionProof(signClaims(claims, attacker.privateKey), [pem], ctx);
    assert.deepEqual(r, { ok: false, why: 'proof signature does not verify with the identity server key' });
  });

  test('changed claims under a valid signature (sub swapped) fail', () => {
    const [h, , s] = bob().assertion.split('.');
    const forged = { ...bob().claims, sub: 'system:serviceaccount:shop:alice' };
    const r = verifyActionProof(`${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`, [pem], ctx);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.why, 'proof signature does not verify with the identity server key');
  });

  test('alg none, other algorithms and malformed proofs fail', () => {
    const body = bob().assertion.split('.')[1];
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'glidepath-action+jwt' })).toString('base64url')}.${body}.`;
    assert.match((verifyActionProof(none, [pem], ctx) as { why: string }).why, /algorithm must be EdDSA, not "none"/);
    const hs = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'glidepath-action+jwt' })).toString('base64url')}.${body}.AAAA`;
    assert.match((verifyActionProof(hs, [pem], ctx) as { why: string }).why, /not "HS256"/);
    for (const p of [undefined, 42, '', 'a.b', 'a.b.c.d', 'x'.repeat(9000)]) assert.equal(verifyActionProof(p, [pem], ctx).ok, false, String(p).slice(0, 20));
  });

  test('an expired proof fails; one within the clock skew passes', () => {
    const old = bob({}, NOW - 200_000); // exp = NOW - 80 s
    assert.deepEqual(verifyActionProof(old.assertion, [pem], ctx), { ok: false, why: 'proof has expired', sub: 'system:serviceaccount:shop:bob' });
    const recent = bob({}, NOW - 150_000); // exp = NOW - 30 s, inside 60 s skew
    assert.equal(verifyActionProof(recent.assertion, [pem], ctx).ok, true);
    const future = bob({}, NOW + 120_000);
    assert.equal((verifyActionProof(future.assertion, [pem], ctx) as { why: string }).why, 'proof is issued in the future');
  });

  test('a proof for another release, namespace, action, step or attempt fails', () => {
    const cases: [Partial<Parameters<AssertionSigner['sign']>[0]>, string][] = [
      [{ releaseId: 'release-shop-api' }, 'proof is for release release-shop-api, not release-shop-web'],
      [{ namespace: 'other' }, 'proof is for namespace other, not shop'],
      [{ action: 'promote' }, 'proof is for promote, not approve'],
      [{ step: 1 }, 'proof approves step 1, but step 2 is pending'],
      [{ step: undefined }, 'an approval proof must name its step'],
      [{ attempt: 2 }, 'proof is for attempt 2, the release is at attempt 1'],
    ];
    for (const [over, why] of cases) assert.deepEqual(verifyActionProof(bob(over).assertion, [pem], ctx), { ok: false, why, sub: 'system:serviceaccount:shop:bob' });
  });

  test('an API version\'s retirement proof is bound to its version; a release proof names none', () => {
    const api: ProofContext = { action: 'approve-retirement', releaseId: 'api-shop-orders', namespace: 'shop', version: 'v1', nowMs: NOW };
    const retire = (over: Partial<Parameters<AssertionSigner['sign']>[0]> = {}) =>
      signer.sign({ sub: 'system:serviceaccount:shop:bob', action: 'approve-retirement', releaseId: 'api-shop-orders', namespace: 'shop', version: 'v1', ...over }, NOW).assertion;
    assert.equal(verifyActionProof(retire(), [pem], api).ok, true);
    const cases: [Partial<Parameters<AssertionSigner['sign']>[0]>, string][] = [
      [{ version: 'v2' }, 'proof is for version v2, not v1'],
      [{ version: undefined }, 'proof names no version; it must be for v1'],
      [{ action: 'abort-retirement' }, 'proof is for abort-retirement, not approve-retirement'],
      [{ attempt: 1 }, 'proof is for attempt 1, the release is at attempt (none)'],
    ];
    for (const [over, why] of cases) assert.deepEqual(verifyActionProof(retire(over), [pem], api), { ok: false, why, sub: 'system:serviceaccount:shop:bob' });
    assert.deepEqual(verifyActionProof(bob({ version: 'v1' }).assertion, [pem], ctx), { ok: false, why: 'proof is for version v1, not (none)', sub: 'system:serviceaccount:shop:bob' });
    assert.equal(
      (actionIdentity(policy, { by: 'system:serviceaccount:shop:bob' }, api) as { why: string }).why,
      'approve-retirement: this API requires a proof of identity (glidepath api approve-retirement with --token-file or $GLIDEPATH_IDENTITY_URL)',
    );
  });

  test('a proof already used (nonce remembered) fails; nonces are pruned when expired and bounded', () => {
    const { assertion, claims } = bob();
    const used = rememberNonce([], claims, NOW);
    assert.deepEqual(verifyActionProof(assertion, [pem], { ...ctx, usedNonces: used }), { ok: false, why: 'proof has already been used', sub: claims.sub });
    assert.deepEqual(rememberNonce(used, { ...claims, nonce: 'n2' }, NOW + 10 * 60_000), [{ nonce: 'n2', exp: claims.exp }]);
    let many = used;
    for (let i = 0; i < MAX_REMEMBERED_NONCES + 10; i++) many = rememberNonce(many, { ...claims, nonce: `n${i}` }, NOW);
    assert.equal(many.length, MAX_REMEMBERED_NONCES);
  });

  test('a lifetime longer than the verifier allows fails', () => {
    const long = signClaims({ ...bob().claims, exp: Math.floor(NOW / 1000) + 3600 }, server.privateKey);
    assert.match((verifyActionProof(long, [pem], ctx) as { why: string }).why, /lifetime must be 1 to 600 s/);
  });
});

describe('actionIdentity (the workflow-side decision)', () => {
  test('required: no proof is refused and audited as unauthenticated, even with a by of an approver', () => {
    assert.deepEqual(actionIdentity(policy, { by: 'bob' }, ctx), {
      accepted: false,
      why: 'approve: this release requires a proof of identity (glidepath release approve with --token-file or $GLIDEPATH_IDENTITY_URL)',
      auditAs: 'unauthenticated',
    });
  });

  test('a valid proof: the action counts as the proven sub; a by that contradicts it is refused under the proven name', () => {
    const { assertion, claims } = bob();
    assert.deepEqual(actionIdentity(policy, { proof: assertion }, ctx), { accepted: true, by: claims.sub, proven: true, claims });
    assert.deepEqual(actionIdentity(policy, { by: 'bob', proof: assertion }, ctx), { accepted: false, why: `approve: "by" is bob, but the proof is for ${claims.sub}`, auditAs: claims.sub });
  });

  test('a forged proof is refused and audited as unauthenticated; a misdirected one under its proven sub', () => {
    const forged = signClaims({ ...bob().claims }, attacker.privateKey);
    assert.deepEqual(actionIdentity(policy, { by: 'bob', proof: forged }, ctx), { accepted: false, why: 'approve: proof signature does not verify with the identity server key', auditAs: 'unauthenticated' });
    const other = bob({ releaseId: 'release-shop-api' }).assertion;
    assert.equal((actionIdentity(policy, { proof: other }, ctx) as { auditAs: string }).auditAs, 'system:serviceaccount:shop:bob');
  });

  test('optional: without a proof the claimed by counts, unproven; a bad proof is still refused', () => {
    const optional: IdentityPolicy = { mode: 'optional', publicKeys: [pem] };
    assert.deepEqual(actionIdentity(optional, { by: 'bob' }, ctx), { accepted: true, by: 'bob', proven: false });
    assert.equal(actionIdentity(optional, { by: 'bob', proof: 'a.b.c' }, ctx).accepted, false);
    assert.equal(actionIdentity(undefined, { by: 'bob' }, ctx).accepted, true, 'no policy: as before');
  });
});

describe('keys and policy', () => {
  test('base64url round trip and key parsing', () => {
    for (const n of [0, 1, 2, 3, 31, 32, 64]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      assert.deepEqual(base64ToBytes(bytesToBase64url(bytes)), bytes);
      assert.equal(bytesToBase64url(bytes), Buffer.from(bytes).toString('base64url'));
    }
    assert.deepEqual(parsePublicKey(pem), base64ToBytes(raw));
    assert.equal(parsePublicKey('not a key'), undefined);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.equal(parsePublicKey(rsa), undefined, 'only Ed25519 SPKI');
  });

  test('identityPolicyProblems names the field', () => {
    assert.deepEqual(identityPolicyProblems({ mode: 'required', publicKeys: [pem] }), []);
    assert.deepEqual(identityPolicyProblems({ mode: 'always', publicKeys: ['nope'] }), ['identity.mode: must be required or optional', 'identity.publicKeys[0]: not an Ed25519 public key (PEM, or base64 of the 32 raw bytes)']);
    assert.deepEqual(identityPolicyProblems({ mode: 'optional' }), ['identity.publicKeys: at least one Ed25519 public key of the identity server']);
  });
});

describe('worker configuration (activities/identity.ts)', async () => {
  const { identityPolicyFromEnv, createIdentityActivities } = await import('../../activities/identity.ts');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-identity-keys-'));
  const other = createPublicKey(attacker.privateKey).export({ type: 'spki', format: 'pem' }).toString();

  test('GLIDEPATH_IDENTITY and a key file (two PEM keys during a rotation, or raw base64 lines) make the policy', async () => {
    writeFileSync(join(dir, 'keys.pem'), `${pem}${other}`);
    writeFileSync(join(dir, 'keys.txt'), `# current\n${raw}\n`);
    const policy = identityPolicyFromEnv({ GLIDEPATH_IDENTITY: 'required', GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE: join(dir, 'keys.pem') });
    assert.deepEqual(policy, { mode: 'required', publicKeys: [pem.trim(), other.trim()] });
    assert.deepEqual(identityPolicyFromEnv({ GLIDEPATH_IDENTITY: 'optional', GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE: join(dir, 'keys.txt') }), { mode: 'optional', publicKeys: [raw] });
    assert.equal(identityPolicyFromEnv({}), undefined);
    assert.deepEqual(await createIdentityActivities(policy).identityPolicy(), policy);
    assert.equal(await createIdentityActivities(undefined).identityPolicy(), null);
  });

  test('a bad setting throws naming the variable', () => {
    writeFileSync(join(dir, 'bad.txt'), 'not-a-key\n');
    assert.throws(() => identityPolicyFromEnv({ GLIDEPATH_IDENTITY: 'always', GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE: join(dir, 'keys.txt') }), { message: 'GLIDEPATH_IDENTITY: must be required or optional' });
    assert.throws(() => identityPolicyFromEnv({ GLIDEPATH_IDENTITY: 'required', GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE: join(dir, 'bad.txt') }), { message: 'GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE[0]: not an Ed25519 public key (PEM, or base64 of the 32 raw bytes)' });
    assert.throws(() => identityPolicyFromEnv({ GLIDEPATH_IDENTITY: 'required' }), /needs GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE/);
    assert.throws(() => identityPolicyFromEnv({ GLIDEPATH_IDENTITY_PUBLIC_KEY_FILE: join(dir, 'keys.txt') }), /GLIDEPATH_IDENTITY is not/);
    rmSync(dir, { recursive: true, force: true });
  });
});
