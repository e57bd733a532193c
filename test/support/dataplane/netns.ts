/**
 * The data plane's network: a network namespace made by this run, reached from the host through a veth
 * pair, that holds each pod IP as an address; a /32 host route per pod IP through the veth. Before
 * anything else, a guard route `unreachable <guardCidr>` (the private range the pods use) is installed
 * in the host's main table, so a packet for a pod IP that has no address here fails at once and never
 * leaves the machine, even while the namespace is being made or torn down. Teardown removes everything
 * it added (namespace, veth, routes, guard), also when the process exits on an error or a signal.
 * Needs root (CAP_NET_ADMIN); `netnsUnavailable()` names why when it cannot run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** kwok's default pod range (scripts/kube.sh starts kwok without --cidr). */
export const KWOK_POD_CIDR = '10.0.0.0/24';
/** The guard: every 10.x destination (pods, Services) stays on this machine. */
export const GUARD_CIDR = '10.0.0.0/8';
/** The veth pair's own link addresses (host side .1, namespace side .2). */
const LINK = { host: '169.254.87.1', ns: '169.254.87.2', prefix: 30 };
/** One data plane at a time per machine: the pod IPs of every local cluster are the same range. */
const LOCK_DIR = '/run/glidepath-dataplane';
const NS_PREFIX = 'glidepath-dp-';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryIp = (...args: string[]): boolean => {
  try {
    ip(...args);
    return true;
  } catch {
    return false;
  }
};
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Why network namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces, veth pairs and routes need root (CAP_NET_ADMIN)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'the ip command (iproute2) is not installed';
  }
  const probe = `${NS_PREFIX}probe-${process.pid}`;
  try {
    ip('netns', 'add', probe);
  } catch (err) {
    return `ip netns add failed: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`;
  }
  tryIp('netns', 'del', probe);
  return undefined;
}

export interface NetNs {
  /** The namespace's name (`ip netns exec <name> …`). */
  readonly name: string;
  /** Adds `podIp` as an address in the namespace, then its host route (commands queued, in order). */
  addAddress(podIp: string): void;
  /** Removes the host route of `podIp`, then its address. */
  removeAddress(podIp: string): void;
  /** Resolves once every queued address change has been applied (read back from the kernel). */
  settled(timeoutMs?: number): Promise<void>;
  /** Everything removed: batch processes, namespace (with the veth and the routes through it), guard, lock. */
  close(): void;
}

/** Takes the machine-wide data-plane lock, waiting up to `timeoutMs` for another run to finish; a dead holder's lock is taken over. */
async function lock(timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(`${LOCK_DIR}/pid`, String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(`${LOCK_DIR}/pid`, 'utf8'));
    } catch {
      // being written: look again
    }
    if (Number.isInteger(holder) && !alive(holder)) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > end) throw new Error(`another data plane (pid ${holder}) holds ${LOCK_DIR} for more than ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Namespaces left by runs that were killed (their pid is gone): deleting one removes its veth and routes. */
function removeStale(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${NS_PREFIX}(\\d+)$`).exec(name);
    if (m && !alive(Number(m[1]))) tryIp('netns', 'del', name);
  }
}

/** An `ip -batch -` process: commands written to it apply in order, one process for the whole run. */
function batch(prefix: string[]): { proc: ChildProcess; errors: () => string; send: (line: string) => void } {
  const proc = spawn('ip', [...prefix, '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let errors = '';
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (errors = (errors + d).slice(-4000)));
  proc.on('error', (err) => (errors += String(err)));
  return { proc, errors: () => errors, send: (line) => proc.stdin?.write(`${line}\n`) };
}

/** Makes the guard route, the namespace and the veth pair; see the file header. */
export async function createNetNs(opts: { lockTimeoutMs?: number } = {}): Promise<NetNs> {
  await lock(opts.lockTimeoutMs ?? 180_000);
  const name = `${NS_PREFIX}${process.pid}`;
  const hostIf = `gpdp${process.pid}h`;
  const nsIf = `gpdp${process.pid}n`;
  let closed = false;
  const wanted = new Set<string>();
  let host: ReturnType<typeof batch> | undefined;
  let inNs: ReturnType<typeof batch> | undefined;

  const close = (): void => {
    if (closed) return;
    closed = true;
    host?.proc.kill();
    inNs?.proc.kill();
    tryIp('netns', 'del', name); // the veth pair and every route through it go with it
    tryIp('link', 'del', hostIf);
    tryIp('route', 'del', 'unreachable', GUARD_CIDR); // last: nothing routes to the pods any more
    rmSync(LOCK_DIR, { recursive: true, force: true });
    process.off('exit', close);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    close();
    process.kill(process.pid, sig);
  };
  process.once('exit', close);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, onSignal);

  try {
    // The guard first: from here on no pod or Service address can leave the machine.
    ip('route', 'replace', 'unreachable', GUARD_CIDR);
    removeStale();
    ip('netns', 'add', name);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', name);
    ip('addr', 'add', `${LINK.host}/${LINK.prefix}`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'addr', 'add', `${LINK.ns}/${LINK.prefix}`, 'dev', nsIf);
    ip('-n', name, 'link', 'set', nsIf, 'up');
    host = batch([]);
    inNs = batch(['-n', name]);
  } catch (err) {
    close();
    throw err;
  }
  const h = host;
  const n = inNs;

  return {
    name,
    addAddress(podIp) {
      wanted.add(podIp);
      n.send(`addr replace ${podIp}/32 dev ${nsIf}`);
      h.send(`route replace ${podIp}/32 dev ${hostIf} src ${LINK.host}`);
    },
    removeAddress(podIp) {
      wanted.delete(podIp);
      h.send(`route del ${podIp}/32 dev ${hostIf}`);
      n.send(`addr del ${podIp}/32 dev ${nsIf}`);
    },
    async settled(timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const have = new Set([...ip('-n', name, '-o', '-4', 'addr', 'show', 'dev', nsIf).matchAll(/inet (\d+\.\d+\.\d+\.\d+)\/32/g)].map((m) => m[1] as string));
        const routes = new Set([...ip('-4', 'route', 'show', 'dev', hostIf).matchAll(/^(\d+\.\d+\.\d+\.\d+) /gm)].map((m) => m[1] as string));
        const same = (s: Set<string>) => s.size === wanted.size && [...wanted].every((a) => s.has(a));
        if (same(have) && same(routes)) return;
        if (Date.now() > end) {
          throw new Error(`addresses not applied in ${timeoutMs} ms: want ${[...wanted].join(' ')}; have ${[...have].join(' ')}; routes ${[...routes].join(' ')}; ip: ${h.errors()} ${n.errors()}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close,
  };
}
