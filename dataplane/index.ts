/**
 * The data plane of the request-level tests, the traffic bench and the demo: kwok's pods made reachable. A network namespace of this run
 * holds the pod IPs as addresses (netns.ts) and a server answering with the version of the pod whose IP
 * it was reached on (backend.ts); a watch on the pods tells the server which IP is which pod. A pod serves
 * from the moment it has an IP until `drainMs` after it is deleted (as a pod with a preStop sleep keeps
 * serving while proxies drop its endpoint); then connections to its IP are reset.
 *
 *   const dp = await startDataPlane(kc, { namespaces: [ns] });
 *   dp.setFailure('v2', 0.5);   // half of v2's requests answer 500
 *   await dp.stop();
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, makeInformer, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { createNetNs, type NetNs } from './netns.ts';

export { LOCK_FILE, netnsUnavailable } from './netns.ts';

export interface ServedPod {
  version: string;
  pod: string;
  namespace: string;
  uid: string;
}

export interface DataPlaneOptions {
  /** Only pods of namespaces in this list (or for which it returns true) are served (default: every namespace). */
  namespaces?: string[] | ((namespace: string) => boolean);
  /** How long a deleted pod keeps serving. Default 5000 ms. */
  drainMs?: number;
  /** The ports the pods listen on. Default [80]. */
  ports?: number[];
  /** Ports the pods serve gRPC on, over h2c (backend.ts). Default none. */
  h2cPorts?: number[];
  /** How long to wait for the machine-wide lock while another data plane runs (default 180 s). */
  lockTimeoutMs?: number;
  /** Tear down on SIGINT/SIGTERM/SIGHUP by itself (default true); see NetNsOptions.closeOnSignal. */
  closeOnSignal?: boolean;
}

/** A change of what an address serves: a pod starts serving on it, or its drain ends and the address stops answering. */
export interface AddressEvent {
  at: number;
  ip: string;
  pod: string;
  version: string;
  what: 'serves' | 'gone';
}

/** How many address events a data plane keeps (the newest). */
const HISTORY_LIMIT = 2000;

export interface DataPlane {
  /** The network namespace's name. */
  readonly netns: string;
  /** The pods served now, by IP. */
  served(): Map<string, ServedPod>;
  /** Resolves once `pred` holds for the served pods. */
  until(pred: (served: Map<string, ServedPod>) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** The newest address events (at most HISTORY_LIMIT), oldest first: which pod an address served when. */
  history(): AddressEvent[];
  /** `share` (0..1) of the requests to pods of `version` answer 500, evenly spread; 0 stops it. */
  setFailure(version: string, share: number): void;
  stop(): Promise<void>;
}

const backendScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'backend.ts');

/** The image tag of a pod's first container (`registry.local/web:v2` → `v2`). */
export function versionOf(pod: V1Pod): string {
  const image = pod.spec?.containers[0]?.image ?? '';
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? image.slice(at + 1) : 'latest';
}

/** Whether the pod serves: it has an IP, runs, and is not being deleted. */
const serving = (p: V1Pod): boolean => Boolean(p.status?.podIP) && p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp;

async function startBackend(netns: string, ports: string[]): Promise<ChildProcess> {
  // `ip netns exec` execs node with the IPC channel's descriptor inherited.
  const child = fork(backendScript, ports, { execPath: 'ip', execArgv: ['netns', 'exec', netns, process.execPath], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the data-plane backend exited with ${code} before listening`)));
  });
  return child;
}

export async function startDataPlane(kc: KubeConfig, opts: DataPlaneOptions = {}): Promise<DataPlane> {
  const drainMs = opts.drainMs ?? 5000;
  const scope = opts.namespaces;
  const inScope = (p: V1Pod): boolean => {
    const ns = p.metadata?.namespace ?? '';
    return scope === undefined || (typeof scope === 'function' ? scope(ns) : scope.includes(ns));
  };
  const net: NetNs = await createNetNs({ lockTimeoutMs: opts.lockTimeoutMs, closeOnSignal: opts.closeOnSignal });
  let backend: ChildProcess | undefined;
  try {
    backend = await startBackend(net.name, [...(opts.ports ?? [80]).map(String), ...(opts.h2cPorts ?? []).map((p) => `h2c:${p}`)]);
  } catch (err) {
    net.close();
    throw err;
  }
  const child = backend;
  const served = new Map<string, ServedPod>();
  const draining = new Map<string, NodeJS.Timeout>();
  const failures: Record<string, number> = {};
  const events: AddressEvent[] = [];
  const record = (ip: string, p: ServedPod, what: AddressEvent['what']): void => {
    events.push({ at: Date.now(), ip, pod: `${p.namespace}/${p.pod}`, version: p.version, what });
    if (events.length > HISTORY_LIMIT) events.splice(0, events.length - HISTORY_LIMIT);
  };
  let stopped = false;

  const publish = (): void => {
    if (!child.connected) return;
    child.send({ pods: Object.fromEntries([...served].map(([ip, p]) => [ip, { version: p.version, pod: `${p.namespace}/${p.pod}` }])) });
  };

  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());

  /** Brings the served pods and the addresses in line with the pods the informer holds. */
  const sync = (): void => {
    if (stopped) return;
    const want = new Map<string, ServedPod>();
    for (const p of informer.list()) {
      if (!inScope(p) || !serving(p)) continue;
      want.set(p.status?.podIP as string, { version: versionOf(p), pod: p.metadata?.name ?? '', namespace: p.metadata?.namespace ?? '', uid: p.metadata?.uid ?? '' });
    }
    let changed = false;
    for (const [ip, pod] of want) {
      const had = served.get(ip);
      clearTimeout(draining.get(ip));
      draining.delete(ip);
      if (had?.uid === pod.uid) continue;
      served.set(ip, pod);
      record(ip, pod, 'serves');
      changed = true;
    }
    for (const [ip, pod] of served) {
      if (want.has(ip) || draining.has(ip)) continue;
      draining.set(
        ip,
        setTimeout(() => {
          draining.delete(ip);
          if (served.get(ip)?.uid !== pod.uid) return;
          served.delete(ip);
          record(ip, pod, 'gone');
          publish();
        }, drainMs),
      );
    }
    if (changed) publish();
  };

  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, sync);
  informer.on('error', () => {
    if (!stopped) setTimeout(() => void informer.start().catch(() => {}), 200);
  });
  try {
    await informer.start();
    sync();
  } catch (err) {
    child.kill();
    net.close();
    throw err;
  }

  return {
    netns: net.name,
    served: () => new Map(served),
    history: () => [...events],
    async until(pred, what, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      while (!pred(new Map(served))) {
        if (Date.now() > end) throw new Error(`data plane: timed out waiting for ${what}; serving ${JSON.stringify([...served].map(([ip, p]) => `${ip}=${p.pod}:${p.version}`))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    setFailure(version, share) {
      if (!(share >= 0 && share <= 1)) throw new Error(`failure share must be within 0..1, got ${share}`);
      failures[version] = share;
      if (child.connected) child.send({ fail: failures });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of draining.values()) clearTimeout(t);
      await informer.stop();
      const exited = child.exitCode === null ? new Promise((r) => child.once('exit', r)) : Promise.resolve();
      if (child.connected) child.disconnect();
      const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(kill);
      net.close();
    },
  };
}
