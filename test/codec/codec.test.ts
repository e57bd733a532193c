// Unit tests of the AES-256-GCM payload codec and its key configuration (no server needed).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  AesGcmCodec,
  CodecConfigError,
  CodecDecodeError,
  dataConverterFromEnv,
  ENCODING_ENCRYPTED,
  loadCodecFromEnv,
  METADATA_KEY_ID,
} from '../../workers/codec.ts';

const key = (): string => randomBytes(32).toString('base64');
const K1 = key();
const K2 = key();
const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);
const SECRET = { image: 'registry.local/app:v2', token: 'super-secret-token-1234' };

function codec(env: Record<string, string>): AesGcmCodec {
  const c = loadCodecFromEnv(env);
  assert.ok(c, 'expected a codec');
  return c;
}

describe('AesGcmCodec', () => {
  it('round-trips JSON, binary, null and empty payloads; ciphertext hides the plaintext', async () => {
    const c = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    const originals: Payload[] = [SECRET, new Uint8Array([0, 1, 2, 255]), null, undefined, ''].map((v) => defaultPayloadConverter.toPayload(v));
    const encrypted = await c.encode(originals);
    assert.equal(encrypted.length, originals.length);
    for (const p of encrypted) {
      assert.equal(text(p.metadata?.encoding), ENCODING_ENCRYPTED);
      assert.equal(text(p.metadata?.[METADATA_KEY_ID]), 'k1');
      assert.deepEqual(Object.keys(p.metadata ?? {}).sort(), ['encoding', METADATA_KEY_ID].sort(), 'original metadata (json/plain) must not leak');
      assert.ok(!Buffer.from(p.data!).toString('latin1').includes('super-secret'), 'no plaintext in the ciphertext');
    }
    const decrypted = await c.decode(encrypted);
    const bytes = (p: Payload) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v)])), data: Buffer.from(p.data ?? []) });
    assert.deepEqual(decrypted.map(bytes), originals.map(bytes));
    assert.deepEqual(defaultPayloadConverter.fromPayload(decrypted[0]!), SECRET);
    assert.deepEqual(await c.encode([]), []);
  });

  it('uses a fresh nonce per payload: the same value encrypts differently each time', async () => {
    const c = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    const [a, b] = await c.encode([defaultPayloadConverter.toPayload(SECRET), defaultPayloadConverter.toPayload(SECRET)]);
    assert.notDeepEqual(Buffer.from(a!.data!), Buffer.from(b!.data!));
  });

  it('passes through payloads that are not binary/encrypted (written before encryption was on)', async () => {
    const c = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    const plain = defaultPayloadConverter.toPayload(SECRET);
    const [decoded] = await c.decode([plain]);
    assert.equal(decoded, plain);
  });

  it('rotation: payloads from the old key id still decrypt, new payloads use the new id', async () => {
    const before = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    const [old] = await before.encode([defaultPayloadConverter.toPayload(SECRET)]);

    const rotated = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1},k2:${K2}`, GLIDEPATH_CODEC_KEY_ID: 'k2' });
    assert.equal(rotated.currentKeyId, 'k2');
    assert.deepEqual(rotated.keyIds, ['k2', 'k1']);
    const [fresh] = await rotated.encode([defaultPayloadConverter.toPayload(SECRET)]);
    assert.equal(text(fresh!.metadata?.[METADATA_KEY_ID]), 'k2');
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!), SECRET);
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([fresh!]))[0]!), SECRET);

    // Once k1 is retired, its payloads fail with an error naming the id and the variables.
    const retired = codec({ GLIDEPATH_CODEC_KEYS: `k2:${K2}` });
    await assert.rejects(retired.decode([old!]), (err: Error) => {
      assert.ok(err instanceof CodecDecodeError);
      assert.match(err.message, /key id "k1"/);
      assert.match(err.message, /GLIDEPATH_CODEC_KEYS/);
      assert.match(err.message, /known|among the keys/);
      return true;
    });
  });

  it('tamper detection: a flipped ciphertext, tag or nonce bit, or a swapped key id, fails GCM authentication', async () => {
    const c = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1},k2:${K2}`, GLIDEPATH_CODEC_KEY_ID: 'k1' });
    const [good] = await c.encode([defaultPayloadConverter.toPayload(SECRET)]);
    const n = good!.data!.byteLength;
    for (const at of [0, 12, Math.floor(n / 2), n - 1]) {
      const data = new Uint8Array(good!.data!);
      data[at]! ^= 0x01;
      await assert.rejects(c.decode([{ ...good!, data }]), (err: Error) => {
        assert.ok(err instanceof CodecDecodeError, `byte ${at}: ${err.name}`);
        assert.match(err.message, /failed AES-256-GCM authentication/);
        assert.match(err.message, /altered/);
        return true;
      });
    }
    // The key id is authenticated data: relabelling a k1 payload as k2 fails even though k2 exists.
    const relabelled = { data: good!.data, metadata: { ...good!.metadata, [METADATA_KEY_ID]: new TextEncoder().encode('k2') } };
    await assert.rejects(c.decode([relabelled]), /key id "k2" failed AES-256-GCM authentication/);
    // Truncated data.
    await assert.rejects(c.decode([{ ...good!, data: good!.data!.subarray(0, 20) }]), /shorter than nonce \+ tag/);
  });

  it('wrong key under the right id: a clear authentication error, not garbage', async () => {
    const writer = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    const reader = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K2}` });
    const [encrypted] = await writer.encode([defaultPayloadConverter.toPayload(SECRET)]);
    await assert.rejects(reader.decode([encrypted!]), (err: Error) => {
      assert.ok(err instanceof CodecDecodeError);
      assert.match(err.message, /key id "k1" failed AES-256-GCM authentication/);
      assert.match(err.message, /not the one it was encrypted with/);
      return true;
    });
  });

  it('rejects an encrypted payload without a key id', async () => {
    const c = codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    const [encrypted] = await c.encode([defaultPayloadConverter.toPayload(1)]);
    await assert.rejects(c.decode([{ data: encrypted!.data, metadata: { encoding: encrypted!.metadata!.encoding! } }]), /no "encryption-key-id" metadata/);
  });
});

describe('key configuration from the environment', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'glidepath-codec-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('no variables: encryption off (undefined codec, empty data converter)', () => {
    assert.equal(loadCodecFromEnv({}), undefined);
    assert.deepEqual(dataConverterFromEnv({}), {});
  });

  it('dataConverterFromEnv wraps the codec as payloadCodecs', () => {
    const dc = dataConverterFromEnv({ GLIDEPATH_CODEC_KEYS: `k1:${K1}` });
    assert.equal(dc.payloadCodecs?.length, 1);
    assert.ok(dc.payloadCodecs![0] instanceof AesGcmCodec);
  });

  it('inline keys: id:base64 separated by commas, spaces or newlines, or JSON', () => {
    assert.deepEqual(codec({ GLIDEPATH_CODEC_KEYS: `k1:${K1}\n k2:${K2}`, GLIDEPATH_CODEC_KEY_ID: 'k2' }).keyIds, ['k2', 'k1']);
    assert.deepEqual(codec({ GLIDEPATH_CODEC_KEYS: JSON.stringify({ a: K1, b: K2 }), GLIDEPATH_CODEC_KEY_ID: 'a' }).keyIds, ['a', 'b']);
  });

  it('key file: lines with comments, flat JSON, or JSON naming the current key', async () => {
    const lines = path.join(dir, 'keys.txt');
    await writeFile(lines, `# rotated 2026-01\nold:${K1}\n\nnew:${K2}  # current\n`);
    assert.equal(codec({ GLIDEPATH_CODEC_KEY_FILE: lines, GLIDEPATH_CODEC_KEY_ID: 'new' }).currentKeyId, 'new');

    const json = path.join(dir, 'keys.json');
    await writeFile(json, JSON.stringify({ current: 'new', keys: { old: K1, new: K2 } }));
    assert.deepEqual(codec({ GLIDEPATH_CODEC_KEY_FILE: json }).keyIds, ['new', 'old']);
    // The variable overrides the file's "current".
    assert.equal(codec({ GLIDEPATH_CODEC_KEY_FILE: json, GLIDEPATH_CODEC_KEY_ID: 'old' }).currentKeyId, 'old');

    // File and inline keys merge.
    const single = path.join(dir, 'single.txt');
    await writeFile(single, `old:${K1}\n`);
    assert.deepEqual(codec({ GLIDEPATH_CODEC_KEY_FILE: single, GLIDEPATH_CODEC_KEYS: `new:${K2}`, GLIDEPATH_CODEC_KEY_ID: 'new' }).keyIds, ['new', 'old']);
  });

  it('a single key is current without GLIDEPATH_CODEC_KEY_ID', () => {
    assert.equal(codec({ GLIDEPATH_CODEC_KEYS: `only:${K1}` }).currentKeyId, 'only');
  });

  const configError = (env: Record<string, string>, ...patterns: RegExp[]): void => {
    assert.throws(() => loadCodecFromEnv(env), (err: Error) => {
      assert.ok(err instanceof CodecConfigError, `${err.name}: ${err.message}`);
      for (const p of patterns) assert.match(err.message, p);
      return true;
    });
  };

  it('malformed keys: errors name the variable and the key', async () => {
    configError({ GLIDEPATH_CODEC_KEYS: `k1:${randomBytes(16).toString('base64')}` }, /^GLIDEPATH_CODEC_KEYS: key "k1" is 16 bytes/, /needs 32/);
    configError({ GLIDEPATH_CODEC_KEYS: `k1:${randomBytes(33).toString('base64')}` }, /GLIDEPATH_CODEC_KEYS: key "k1" is 33 bytes/);
    configError({ GLIDEPATH_CODEC_KEYS: 'k1:not*base64!' }, /GLIDEPATH_CODEC_KEYS: key "k1" is not standard base64/);
    configError({ GLIDEPATH_CODEC_KEYS: K1 }, /GLIDEPATH_CODEC_KEYS: entry .* is not of the form id:base64key/);
    configError({ GLIDEPATH_CODEC_KEYS: `bad/id:${K1}` }, /key id "bad\/id" is invalid/);
    configError({ GLIDEPATH_CODEC_KEYS: `k1:${K1},k1:${K2}` }, /key id "k1" appears twice/);
    configError({ GLIDEPATH_CODEC_KEYS: '{"k1": 5}' }, /GLIDEPATH_CODEC_KEYS: key "k1" is not standard base64/);
    configError({ GLIDEPATH_CODEC_KEYS: '{"k1": ' }, /GLIDEPATH_CODEC_KEYS: invalid JSON/);

    const file = path.join(dir, 'short.txt');
    await writeFile(file, `k1:${randomBytes(31).toString('base64')}\n`);
    configError({ GLIDEPATH_CODEC_KEY_FILE: file }, /^GLIDEPATH_CODEC_KEY_FILE \(.*short\.txt\): key "k1" is 31 bytes/);
    configError({ GLIDEPATH_CODEC_KEY_FILE: path.join(dir, 'missing.txt') }, /GLIDEPATH_CODEC_KEY_FILE \(.*missing\.txt\): cannot read the file/);
    await writeFile(path.join(dir, 'empty.txt'), '# nothing yet\n');
    configError({ GLIDEPATH_CODEC_KEY_FILE: path.join(dir, 'empty.txt') }, /no keys found/);
  });

  it('current key id problems name GLIDEPATH_CODEC_KEY_ID', async () => {
    configError({ GLIDEPATH_CODEC_KEYS: `k1:${K1},k2:${K2}` }, /holds 2 keys \(k1, k2\)/, /set GLIDEPATH_CODEC_KEY_ID/);
    configError({ GLIDEPATH_CODEC_KEYS: `k1:${K1}`, GLIDEPATH_CODEC_KEY_ID: 'k9' }, /^GLIDEPATH_CODEC_KEY_ID names key id "k9"/);
    configError({ GLIDEPATH_CODEC_KEY_ID: 'k1' }, /GLIDEPATH_CODEC_KEY_ID is set .* neither GLIDEPATH_CODEC_KEYS nor GLIDEPATH_CODEC_KEY_FILE/);
    const file = path.join(dir, 'conflict.txt');
    await writeFile(file, `k1:${K2}\n`);
    configError({ GLIDEPATH_CODEC_KEY_FILE: file, GLIDEPATH_CODEC_KEYS: `k1:${K1}` }, /key id "k1" is defined differently/);
  });
});
