/**
 * Payload encryption: an AES-256-GCM {@link PayloadCodec} with key ids, so keys can be rotated
 * while old histories stay readable. Keys come from the environment (summary in docs/docker-compose.md):
 *
 * - `GLIDEPATH_CODEC_KEYS`: `id:base64key` entries separated by commas, whitespace or newlines,
 *   or a JSON object `{"id": "base64key"}`.
 * - `GLIDEPATH_CODEC_KEY_FILE`: a file in either form (lines may have `#` comments), or JSON
 *   `{"current": "id", "keys": {"id": "base64key"}}`.
 * - `GLIDEPATH_CODEC_KEY_ID`: the id new payloads are encrypted with. Optional when only one key
 *   is known (or the JSON file names `current`).
 *
 * Encrypted payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <id>`; data
 * `nonce (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes)` of the whole original Payload (protobuf),
 * with the key id as additional authenticated data. Payloads that are not `binary/encrypted`
 * (written before encryption was turned on) are decoded unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

export const KEYS_ENV = 'GLIDEPATH_CODEC_KEYS';
export const KEY_FILE_ENV = 'GLIDEPATH_CODEC_KEY_FILE';
export const KEY_ID_ENV = 'GLIDEPATH_CODEC_KEY_ID';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const ProtoPayload = proto.temporal.api.common.v1.Payload;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A key configuration problem; the message names the variable (or file) to fix. */
export class CodecConfigError extends Error {
  override name = 'CodecConfigError';
}

/** A payload that cannot be decrypted: unknown key id, failed authentication, or malformed. */
export class CodecDecodeError extends Error {
  override name = 'CodecDecodeError';
}

export interface CodecKeys {
  /** id → 32-byte key. */
  keys: Map<string, Uint8Array>;
  /** The id new payloads are encrypted with. */
  currentKeyId: string;
  /** Where the keys came from, for error messages (e.g. `GLIDEPATH_CODEC_KEY_FILE (/etc/keys)`). */
  source: string;
}

/** AES-256-GCM codec: encrypts with the current key, decrypts with any known key. */
export class AesGcmCodec implements PayloadCodec {
  readonly currentKeyId: string;
  readonly #keys: Map<string, Uint8Array>;
  readonly #source: string;

  constructor({ keys, currentKeyId, source }: CodecKeys) {
    if (!keys.has(currentKeyId)) {
      throw new CodecConfigError(`current key id "${currentKeyId}" is not among the keys from ${source} (${[...keys.keys()].join(', ') || 'none'})`);
    }
    for (const [id, key] of keys) checkKey(id, key, source);
    this.#keys = new Map(keys);
    this.currentKeyId = currentKeyId;
    this.#source = source;
  }

  /** The ids this codec can decrypt, current first. */
  get keyIds(): string[] {
    return [this.currentKeyId, ...[...this.#keys.keys()].filter((id) => id !== this.currentKeyId)];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.#keys.get(this.currentKeyId)!;
    const aad = encoder.encode(this.currentKeyId);
    return payloads.map((payload) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const body = cipher.update(ProtoPayload.encode(payload).finish());
      const data = Buffer.concat([nonce, body, cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: encoder.encode(ENCODING_ENCRYPTED), [METADATA_KEY_ID]: aad },
        data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.#decodeOne(payload));
  }

  #decodeOne(payload: Payload): Payload {
    const encoding = payload.metadata?.encoding;
    if (!encoding || decoder.decode(encoding) !== ENCODING_ENCRYPTED) return payload;
    const rawId = payload.metadata?.[METADATA_KEY_ID];
    if (!rawId) throw new CodecDecodeError(`encrypted payload has no "${METADATA_KEY_ID}" metadata`);
    const keyId = decoder.decode(rawId);
    const key = this.#keys.get(keyId);
    if (!key) {
      throw new CodecDecodeError(
        `payload was encrypted with key id "${keyId}", which is not among the keys from ${this.#source} (${this.keyIds.join(', ')}); ` +
          `add that key to ${KEYS_ENV} or ${KEY_FILE_ENV}`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.byteLength < NONCE_BYTES + TAG_BYTES) {
      throw new CodecDecodeError(`encrypted payload (key id "${keyId}") is ${data.byteLength} bytes, shorter than nonce + tag`);
    }
    const nonce = data.subarray(0, NONCE_BYTES);
    const tag = data.subarray(data.byteLength - TAG_BYTES);
    const body = data.subarray(NONCE_BYTES, data.byteLength - TAG_BYTES);
    const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(rawId);
    decipher.setAuthTag(tag);
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      throw new CodecDecodeError(
        `payload encrypted with key id "${keyId}" failed AES-256-GCM authentication: ` +
          `the ciphertext was altered, or the key configured under id "${keyId}" is not the one it was encrypted with`,
      );
    }
    const decoded = ProtoPayload.decode(plain);
    return { metadata: decoded.metadata, data: decoded.data };
  }
}

function checkKey(id: string, key: Uint8Array, source: string): void {
  if (!KEY_ID_PATTERN.test(id)) {
    throw new CodecConfigError(`${source}: key id "${id}" is invalid (1 to 64 characters from A-Z a-z 0-9 . _ -)`);
  }
  if (key.byteLength !== KEY_BYTES) {
    throw new CodecConfigError(
      `${source}: key "${id}" is ${key.byteLength} bytes after base64 decoding; AES-256-GCM needs ${KEY_BYTES} (make one with: openssl rand -base64 32)`,
    );
  }
}

function decodeKey(id: string, b64: unknown, source: string): Uint8Array {
  if (typeof b64 !== 'string' || !BASE64_PATTERN.test(b64.trim())) {
    throw new CodecConfigError(`${source}: key "${id}" is not standard base64 (make one with: openssl rand -base64 32)`);
  }
  const key = new Uint8Array(Buffer.from(b64.trim(), 'base64'));
  checkKey(id, key, source);
  return key;
}

interface ParsedKeys {
  keys: Map<string, Uint8Array>;
  current?: string | undefined;
}

/** Parses `id:base64` entries (separated by commas, whitespace or newlines; `#` starts a comment) or JSON. */
export function parseKeys(text: string, source: string): ParsedKeys {
  const trimmed = text.trim();
  const keys = new Map<string, Uint8Array>();
  const add = (id: string, b64: unknown): void => {
    if (keys.has(id)) throw new CodecConfigError(`${source}: key id "${id}" appears twice`);
    keys.set(id, decodeKey(id, b64, source));
  };
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (err) {
      throw new CodecConfigError(`${source}: invalid JSON (${(err as Error).message})`);
    }
    const obj = json as Record<string, unknown>;
    const nested = typeof obj.keys === 'object' && obj.keys !== null && !Array.isArray(obj.keys);
    const entries = nested ? (obj.keys as Record<string, unknown>) : obj;
    if (nested && obj.current !== undefined && typeof obj.current !== 'string') {
      throw new CodecConfigError(`${source}: "current" must be a key id string`);
    }
    for (const [id, b64] of Object.entries(entries)) {
      if (!nested && id === 'current') continue;
      add(id, b64);
    }
    return { keys, current: nested ? (obj.current as string | undefined) : undefined };
  }
  for (const line of trimmed.split('\n')) {
    const content = line.replace(/#.*$/, '').trim();
    for (const entry of content.split(/[\s,]+/).filter(Boolean)) {
      const colon = entry.indexOf(':');
      if (colon <= 0) throw new CodecConfigError(`${source}: entry "${entry.slice(0, 12)}…" is not of the form id:base64key`);
      add(entry.slice(0, colon), entry.slice(colon + 1));
    }
  }
  return { keys, current: undefined };
}

/**
 * Reads the key configuration from `env`. Returns undefined when neither `GLIDEPATH_CODEC_KEYS` nor
 * `GLIDEPATH_CODEC_KEY_FILE` is set (encryption off); throws {@link CodecConfigError} on any
 * mistake, since a half-configured encryption setup must not silently write plaintext.
 */
export function loadKeysFromEnv(env: NodeJS.ProcessEnv = process.env): CodecKeys | undefined {
  const inline = env[KEYS_ENV]?.trim();
  const file = env[KEY_FILE_ENV]?.trim();
  const wantedId = env[KEY_ID_ENV]?.trim();
  if (!inline && !file) {
    if (wantedId) throw new CodecConfigError(`${KEY_ID_ENV} is set to "${wantedId}" but neither ${KEYS_ENV} nor ${KEY_FILE_ENV} provides keys`);
    return undefined;
  }
  const keys = new Map<string, Uint8Array>();
  const sources: string[] = [];
  let fileCurrent: string | undefined;
  const merge = (parsed: ParsedKeys, source: string): void => {
    for (const [id, key] of parsed.keys) {
      const existing = keys.get(id);
      if (existing && !Buffer.from(existing).equals(Buffer.from(key))) {
        throw new CodecConfigError(`key id "${id}" is defined differently in ${sources.join(' and ')} and ${source}`);
      }
      keys.set(id, key);
    }
    sources.push(source);
  };
  if (file) {
    const source = `${KEY_FILE_ENV} (${file})`;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CodecConfigError(`${source}: cannot read the file: ${(err as Error).message}`);
    }
    const parsed = parseKeys(text, source);
    fileCurrent = parsed.current;
    merge(parsed, source);
  }
  if (inline) merge(parseKeys(inline, KEYS_ENV), KEYS_ENV);
  const source = sources.join(' and ');
  if (keys.size === 0) throw new CodecConfigError(`${source}: no keys found`);
  let currentKeyId = wantedId || fileCurrent;
  if (!currentKeyId) {
    if (keys.size > 1) {
      throw new CodecConfigError(`${source} holds ${keys.size} keys (${[...keys.keys()].join(', ')}); set ${KEY_ID_ENV} to the one that encrypts new payloads`);
    }
    currentKeyId = [...keys.keys()][0]!;
  }
  if (!keys.has(currentKeyId)) {
    const variable = wantedId ? KEY_ID_ENV : `"current" in ${KEY_FILE_ENV}`;
    throw new CodecConfigError(`${variable} names key id "${currentKeyId}", which is not among the keys from ${source} (${[...keys.keys()].join(', ')})`);
  }
  return { keys, currentKeyId, source };
}

/** The codec the environment configures, or undefined when encryption is off. */
export function loadCodecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const keys = loadKeysFromEnv(env);
  return keys && new AesGcmCodec(keys);
}

/** The data converter the worker and every client use: `{ payloadCodecs: [codec] }`, or `{}` without keys. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter {
  const codec = loadCodecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : {};
}
