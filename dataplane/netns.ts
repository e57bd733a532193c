/**
 * The data plane's network: a network namespace made by this run, reached from the host through a veth
 * pair, that holds every address of the pod range (so each pod IP kwok gives out is an address there
 * before the pod exists: no per-pod network change can lag behind the proxy); one host route for the
 * pod range through the veth. Which addresses answer, and as which pod, is the backend's business. Before
 * anything else, a guard route `unreachable <guardCidr>` (the private range the pods use) is installed
 * in the host's main table, so a packet for a pod IP that has no address here fails at once and never
 * leaves the machine, even while the namespace is being made or torn down. Teardown removes everything
 * it added (namespace, veth, routes, guard), also when the process exits on an error or a signal.
 * Needs root (CAP_NET_ADMIN); `netnsUnavailable()` names why when it cannot run.
 */
import { execFileSync, spawn } from 'node:child_process';

/** kwok's default pod range (scripts/kube.sh starts kwok without --cidr). */
export const KWOK_POD_CIDR = '10.0.0.0/24';
/** The guard: every 10.x destination (pods, Services) stays on this machine. */
export const GUARD_CIDR = '10.0.0.0/8';
/** The veth pair's own link addresses (host side .1, namespace side .2). */
const LINK = { host: '169.254.87.1', ns: '169.254.87.2', prefix: 30 };
/**
 * One data plane at a time per machine: every local cluster's kwok hands out the same pod range, and the veth
 * link addresses and the guard are the same too, so two data planes would route them over each other. A kernel
 * lock (flock), held by a child process for as long as the data plane lives: it goes with the process however
 * that ends, so there is no stale lock to take over (and no race between two runs taking one over).
 */
export const LOCK_FILE = '/run/glidepath-dataplane.lock';
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
  /** Everything removed: namespace (with the veth and the route through it), guard, lock. */
  close(): void;
}

/** Takes the machine-wide data-plane lock, waiting up to `timeoutMs` for another run to release it; returns its release. */
async function lock(timeoutMs: number): Promise<() => void> {
  const holder = spawn('flock', ['--exclusive', '--wait', String(Math.max(1, Math.ceil(timeoutMs / 1000))), LOCK_FILE, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  holder.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve());
    holder.once('error', (err) => reject(new Error(`flock (util-linux) is needed for the data-plane lock: ${err.message}`)));
    holder.once('exit', (code) => reject(new Error(`another data plane holds ${LOCK_FILE} for more than ${timeoutMs} ms (flock exited ${code}${stderr ? `: ${stderr.trim()}` : ''})`)));
  });
  // The holder must not keep this process alive; when this process ends, its stdin closes and the lock goes.
  holder.unref();
  for (const stream of [holder.stdin, holder.stdout, holder.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
  return () => {
    holder.stdin.end();
  };
}

/** Namespaces left by runs that were killed (their pid is gone): deleting one removes its veth and routes. */
function removeStale(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${NS_PREFIX}(\\d+)$`).exec(name);
    if (m && !alive(Number(m[1]))) tryIp('netns', 'del', name);
  }
}

/** The host addresses of an IPv4 /24 (`10.0.0.0/24` → 10.0.0.1 … 10.0.0.254). */
function hostsOf(cidr: string): string[] {
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(cidr);
  if (!m) throw new Error(`pod range must be an IPv4 /24, got ${cidr}`);
  return Array.from({ length: 254 }, (_, i) => `${m[1]}.${i + 1}`);
}

/**
 * Adds `unreachable <GUARD_CIDR>`. A guard left by a killed run (the lock is ours, so no other run
 * holds it) is kept as ours; any other route for that range is the machine's own, and it is neither
 * replaced nor, at teardown, removed: the data plane refuses to start instead.
 */
function installGuard(): true {
  const existing = ip('route', 'show', 'exact', GUARD_CIDR).trim();
  if (existing === '') ip('route', 'add', 'unreachable', GUARD_CIDR);
  else if (!existing.startsWith('unreachable ')) {
    throw new Error(`this machine already routes ${GUARD_CIDR} (${existing}); the data plane will not replace that route with its guard`);
  }
  return true;
}

export interface NetNsOptions {
  /** How long to wait for another run's data plane to go (default 180 s); then it fails naming the lock. */
  lockTimeoutMs?: number;
  podCidr?: string;
  /**
   * Tear down on SIGINT, SIGTERM and SIGHUP, then die of the signal (default true). A caller that runs a proxy
   * to the pod addresses passes false and calls close() itself once the proxy has stopped, so the guard is
   * never removed while requests can still go to a pod address.
   */
  closeOnSignal?: boolean;
}

/** Makes the guard route, the namespace and the veth pair; see the file header. */
export async function createNetNs(opts: NetNsOptions = {}): Promise<NetNs> {
  const podCidr = opts.podCidr ?? KWOK_POD_CIDR;
  const addresses = hostsOf(podCidr);
  const unlock = await lock(opts.lockTimeoutMs ?? 180_000);
  const name = `${NS_PREFIX}${process.pid}`;
  const hostIf = `gpdp${process.pid}h`;
  const nsIf = `gpdp${process.pid}n`;
  let closed = false;
  let guardOurs = false;

  const close = (): void => {
    if (closed) return;
    closed = true;
    tryIp('netns', 'del', name); // the veth pair and every route through it go with it
    tryIp('link', 'del', hostIf);
    if (guardOurs) tryIp('route', 'del', 'unreachable', GUARD_CIDR); // last: nothing routes to the pods any more
    unlock();
    process.off('exit', close);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    close();
    process.kill(process.pid, sig);
  };
  process.once('exit', close);
  if (opts.closeOnSignal ?? true) for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, onSignal);

  try {
    // The guard first: from here on no pod or Service address can leave the machine.
    guardOurs = installGuard();
    removeStale();
    ip('netns', 'add', name);
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', name);
    ip('addr', 'add', `${LINK.host}/${LINK.prefix}`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'addr', 'add', `${LINK.ns}/${LINK.prefix}`, 'dev', nsIf);
    ip('-n', name, 'link', 'set', nsIf, 'up');
    execFileSync('ip', ['-n', name, '-batch', '-'], { input: addresses.map((a) => `addr add ${a}/32 dev ${nsIf}\n`).join(''), stdio: ['pipe', 'ignore', 'pipe'] });
    ip('route', 'add', podCidr, 'dev', hostIf, 'src', LINK.host);
  } catch (err) {
    close();
    throw err;
  }

  return {
    name,
    close,
  };
}
