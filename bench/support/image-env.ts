/**
 * The environment the image gives the worker (the Dockerfile's ENV: allocator and Node settings), so a
 * bench's worker runs as it does in a pod; each bench sets the addresses and the bundle itself.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function imageEnv(): Record<string, string> {
  const block = readFileSync(path.join(root, 'Dockerfile'), 'utf8').match(/^ENV ((?:.*\\\n)*.*)$/m)?.[1] ?? '';
  return Object.fromEntries([...block.matchAll(/([A-Z_]+)=("[^"]*"|\S+)/g)].map((m): [string, string] => [m[1] as string, (m[2] as string).replace(/^"(.*)"$/, '$1')]).filter(([k]) => !k.startsWith('GLIDEPATH_')));
}
