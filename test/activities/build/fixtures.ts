/**
 * Build contexts and helpers for the build tests: tiny `FROM scratch` contexts (no base image pull),
 * a slow context whose `RUN` sleeps (binaries copied from the host), docker config.json files, the
 * digest a registry reports for a tag, and the rejection of a promise.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { MockActivityEnvironment } from '@temporalio/testing';
import type { ReleaseTarget } from '../../../activities/contract.ts';
import type { RegistryInstance } from '../../support/registry.ts';

export function scratchContext(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-ctx-'));
  writeFileSync(join(dir, 'hello.txt'), content);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nARG NOTE=none\nLABEL note=$NOTE\nCOPY hello.txt /hello.txt\n');
  return dir;
}

/** A context whose RUN step runs `/bin/sleep <seconds>` (sleep and its libraries copied from the host). */
export function slowContext(seconds: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-slow-'));
  const files = new Set(['/bin/sleep']);
  const ldd = execFileSync('ldd', ['/bin/sleep'], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(\/[^\s)]+)/g)) files.add(m[1] as string);
  for (const f of files) {
    mkdirSync(join(dir, 'rootfs', dirname(f)), { recursive: true });
    copyFileSync(f, join(dir, 'rootfs', f));
  }
  execFileSync('chmod', ['+x', join(dir, 'rootfs/bin/sleep')]);
  writeFileSync(join(dir, 'Dockerfile'), `FROM scratch\nCOPY rootfs/ /\nRUN ["/bin/sleep", "${seconds}"]\n`);
  return dir;
}

let configDir: string | undefined;
let configs = 0;

/** A docker config.json in one per-process temp dir, removed when the process exits. */
export function dockerConfig(registry: string, username: string, password: string): string {
  if (!configDir) {
    const dir = mkdtempSync(join(tmpdir(), 'glidepath-dockercfg-'));
    configDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const file = join(configDir, `config-${++configs}.json`);
  writeFileSync(file, JSON.stringify({ auths: { [registry]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } }), { mode: 0o600 });
  return file;
}

export function target(image: string): ReleaseTarget {
  return {
    releaseId: 'rel-build',
    namespace: 'default',
    workload: { kind: 'Deployment', name: 'app' },
    image,
    strategy: 'canary',
    progressDeadlineSeconds: 60,
  };
}

/** Processes whose command line contains `needle` (from /proc; excludes this process). */
export function processesMatching(needle: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) === 'Z') continue;
      if (cmd.includes(needle)) out.push(`${pid} ${cmd}`);
    } catch {
      // gone
    }
  }
  return out;
}

/** The single-image manifest types a registry HEAD accepts. */
export const MANIFEST_TYPES = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** The registry's Docker-Content-Digest for `repo:ref` (a HEAD accepting `accept`), or null. */
export async function headDigest(reg: RegistryInstance, repo: string, ref: string, auth?: string, accept = MANIFEST_TYPES): Promise<string | null> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept, ...(auth ? { authorization: auth } : {}) } });
  return res.headers.get('docker-content-digest');
}

export function inEnv<R>(env: MockActivityEnvironment, fn: () => Promise<R>): Promise<R> {
  return env.run(fn) as Promise<R>;
}

/** What `p` rejects with; throws when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
