/**
 * The demo's traffic (`npm start`, scripts/demo.sh): the data plane (index.ts) serving the pods of namespace
 * `payments`, Traefik on loopback serving the HTTPRoute payment-gateway from the Gateway `edge` (created here,
 * its listener on Traefik's entry point port), and a bounded load through Traefik at a modest rate. Every 2 s it
 * prints what answered in those 2 s, per version, and the weights Traefik serves:
 *
 *   traffic  v1 90 % (36)  v2 10 % (4)  errors 0  | route stable 90 canary 10
 *
 * (`(changed)` after the route when its weights changed within the 2 s). The load stops by itself after
 * GLIDEPATH_DEMO_TRAFFIC_SECONDS (default 900) at GLIDEPATH_DEMO_RATE requests/s (default 20), then everything
 * here stops and the data-plane lock is free again; SIGTERM, SIGINT or SIGHUP, or its parent going, stop it sooner.
 * Requests go to Traefik on 127.0.0.1 only; Traefik reaches the pod addresses of this run's network namespace,
 * behind the data plane's guard route, which goes only after Traefik has stopped.
 *
 * Env: KUBECONFIG, TRAEFIK_BIN (scripts/provision-traefik.sh), GLIDEPATH_STATE (the `traffic/ready` file is
 * written once the route answers), GLIDEPATH_TRAEFIK_PORT (9080), GLIDEPATH_TRAEFIK_ADMIN_PORT (9081),
 * GLIDEPATH_DATAPLANE_LOCK_WAIT (seconds to wait while another run holds the data-plane lock, default 60).
 * Exit: 0 when stopped, 3 when the data plane cannot run here (one line `traffic: not shown: <why>`), 1 on an
 * error (another run holding the lock past the wait, Traefik failing…), named on one `traffic: failed:` line.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { LOCK_FILE, netnsUnavailable, startDataPlane, type DataPlane } from './index.ts';
import { runLoad, startLoad, totals, type LoadResult, type RunningLoad } from './load.ts';
import { GATEWAY_CLASS, startTraefik, traefikUnavailable, type Traefik } from './traefik.ts';

const NAMESPACE = 'payments';
const GATEWAY = 'edge';
const STABLE_SERVICE = 'payment-gateway-stable';
const CANARY_SERVICE = 'payment-gateway-canary';
/** The port the pods listen on (the Services' targetPort). */
const POD_PORT = 8080;
const INTERVAL_MS = 2000;
/** How long a deleted pod keeps serving (a preStop sleep), so promotion and abort fail no request. */
const DRAIN_MS = 15_000;

/** A whole number from the environment, within [min, max], or the default; a bad value names the variable. */
function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);

interface Weights {
  stable: number;
  canary: number;
}

/** The weights Traefik serves now for the stable/canary pair of the HTTPRoute, or undefined when it serves none. */
async function servedWeights(traefik: Traefik): Promise<Weights | undefined> {
  try {
    const res = await fetch(`${traefik.apiUrl}/http/services?per_page=1000`, { signal: AbortSignal.timeout(1500) });
    const services = (await res.json()) as { weighted?: { services?: { name: string; weight?: number }[] } }[];
    for (const s of services) {
      const children = s.weighted?.services ?? [];
      const stable = children.find((c) => c.name.includes(`${NAMESPACE}-${STABLE_SERVICE}`));
      const canary = children.find((c) => c.name.includes(`${NAMESPACE}-${CANARY_SERVICE}`));
      if (stable) return { stable: stable.weight ?? 1, canary: canary ? (canary.weight ?? 1) : 0 };
    }
  } catch {
    // Traefik busy or stopping: no weights this time
  }
  return undefined;
}

/** GatewayClass `traefik` (created when missing) and Gateway payments/edge with one HTTP listener on `port`. */
async function ensureGateway(kc: KubeConfig, port: number): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const api = { group: 'gateway.networking.k8s.io', version: 'v1' };
  const conflict = (err: unknown): boolean => (err as { code?: number }).code === 409;
  await custom
    .createClusterCustomObject({ ...api, plural: 'gatewayclasses', body: { apiVersion: `${api.group}/v1`, kind: 'GatewayClass', metadata: { name: GATEWAY_CLASS.name }, spec: { controllerName: GATEWAY_CLASS.controllerName } } })
    .catch((err: unknown) => {
      if (!conflict(err)) throw err;
    });
  const spec = { gatewayClassName: GATEWAY_CLASS.name, listeners: [{ name: 'web', protocol: 'HTTP', port }] };
  try {
    await custom.createNamespacedCustomObject({ ...api, plural: 'gateways', namespace: NAMESPACE, body: { apiVersion: `${api.group}/v1`, kind: 'Gateway', metadata: { name: GATEWAY }, spec } });
  } catch (err) {
    if (!conflict(err)) throw err;
    // An earlier demo's Gateway, maybe with another port: take this run's listener.
    const got = (await custom.getNamespacedCustomObject({ ...api, plural: 'gateways', namespace: NAMESPACE, name: GATEWAY })) as { metadata: Record<string, unknown> };
    await custom.replaceNamespacedCustomObject({ ...api, plural: 'gateways', namespace: NAMESPACE, name: GATEWAY, body: { apiVersion: `${api.group}/v1`, kind: 'Gateway', metadata: got.metadata, spec } });
  }
}

/** Waits until 10 requests in a row through Traefik are answered 2xx (the proxy serves the route). */
async function untilRouteAnswers(traefik: Traefik, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: LoadResult | undefined;
  for (;;) {
    last = await runLoad({ url: traefik.url, requests: 10, concurrency: 2, timeoutMs: 2000 });
    if (totals(last).ok === 10) return;
    if (Date.now() > end) throw new Error(`Traefik does not serve the HTTPRoute ${NAMESPACE}/payment-gateway after ${timeoutMs / 1000} s (last 10 requests: ${JSON.stringify(last.byVersion)} 5xx ${JSON.stringify(last.serverErrors)} other ${JSON.stringify(last.otherStatus)} connection ${JSON.stringify(last.connectionErrors)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One split line from the cumulative counts now and at the previous line. */
export function splitLine(now: LoadResult, before: Pick<LoadResult, 'byVersion'> & { errors: number }, versions: string[], route: Weights | undefined, routeChanged: boolean): string {
  const counts = versions.map((v) => [v, (now.byVersion[v] ?? 0) - (before.byVersion[v] ?? 0)] as const);
  const ok = counts.reduce((a, [, n]) => a + n, 0);
  const errors = errorsOf(now) - before.errors;
  const parts = counts.map(([v, n]) => `${v} ${ok === 0 ? 0 : Math.round((100 * n) / ok)} % (${n})`);
  const weights = route ? `route stable ${route.stable} canary ${route.canary}${routeChanged ? ' (changed)' : ''}` : 'route not served yet';
  return `traffic  ${parts.join('  ')}  errors ${errors}  | ${weights}`;
}

const errorsOf = (r: LoadResult): number => {
  const t = totals(r);
  return t.serverErrors + t.connectionErrors + Object.values(r.otherStatus).reduce((a, b) => a + b, 0);
};

async function main(): Promise<number> {
  const rate = envInt('GLIDEPATH_DEMO_RATE', 20, 1, 200);
  const seconds = envInt('GLIDEPATH_DEMO_TRAFFIC_SECONDS', 900, 1, 86_400);
  const port = envInt('GLIDEPATH_TRAEFIK_PORT', 9080, 1, 65_535);
  const adminPort = envInt('GLIDEPATH_TRAEFIK_ADMIN_PORT', 9081, 1, 65_535);
  const lockWait = envInt('GLIDEPATH_DATAPLANE_LOCK_WAIT', 60, 1, 3600);
  const kubeconfig = process.env.KUBECONFIG;
  const why = (kubeconfig ? undefined : 'KUBECONFIG is not set') ?? traefikUnavailable() ?? netnsUnavailable();
  if (why) {
    say(`traffic: not shown: ${why}`);
    return 3;
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig as string);

  /** What runs now, for stop(). */
  const live: { dp?: DataPlane; traefik?: Traefik; load?: RunningLoad; ticker?: NodeJS.Timeout } = {};
  let stopping: Promise<number> | undefined;
  // If this process ends without stop() (an uncaught error), Traefik goes before the data plane's own exit
  // handler removes namespace and guard: this listener is registered first, so it runs first.
  process.once('exit', () => live.traefik?.daemon.process.kill('SIGKILL'));
  const stop = (code: number, why?: string): Promise<number> =>
    (stopping ??= (async () => {
      clearInterval(live.ticker);
      if (why) say(`traffic: stopping: ${why}`);
      if (live.load) {
        const r = await live.load.stop();
        say(`traffic: ${r.sent} requests in all: ${Object.entries(r.byVersion).map(([v, n]) => `${v} ${n}`).join(', ') || 'none answered'}; errors ${errorsOf(r)}`);
      }
      await live.traefik?.stop(); // first: nothing proxies to the pod addresses any more
      await live.dp?.stop(); // then namespace, guard route and lock go
      return code;
    })());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop(0).then((c) => process.exit(c)));

  try {
    execFileSync('flock', ['--nonblock', LOCK_FILE, 'true'], { stdio: 'ignore' });
  } catch {
    say(`traffic: another run holds the data-plane lock ${LOCK_FILE} (a data-plane test, the traffic bench or another npm start); waiting up to ${lockWait} s`);
  }
  try {
    live.dp = await startDataPlane(kc, { namespaces: [NAMESPACE], ports: [POD_PORT], drainMs: DRAIN_MS, lockTimeoutMs: lockWait * 1000, closeOnSignal: false });
  } catch (err) {
    const msg = (err as Error).message;
    if (msg.includes(LOCK_FILE)) {
      say(`traffic: failed: another run held the data-plane lock ${LOCK_FILE} for more than ${lockWait} s (one data plane per machine). Stop that run or wait for it (GLIDEPATH_DATAPLANE_LOCK_WAIT), or start the demo without traffic: GLIDEPATH_DEMO_TRAFFIC=off npm start`);
    } else say(`traffic: failed: the data plane did not start: ${msg}`);
    return stop(1);
  }
  if (stopping) return stopping;
  try {
    live.traefik = await startTraefik({ kubeconfig: kubeconfig as string, port, adminPort, namespaces: [NAMESPACE] });
    await ensureGateway(kc, port);
    await untilRouteAnswers(live.traefik, 60_000);
  } catch (err) {
    say(`traffic: failed: ${(err as Error).message.split('\n')[0]}`);
    return stop(1);
  }
  if (stopping) return stopping;
  const t = live.traefik;
  const data = live.dp;
  const running = (live.load = startLoad({ url: t.url, requests: rate * seconds, concurrency: 2, ratePerSecond: rate, deadlineMs: Date.now() + seconds * 1000, timeoutMs: 2000 }));
  const stateDir = path.join(process.env.GLIDEPATH_STATE ?? '.state', 'traffic');
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(path.join(stateDir, 'ready'), `${t.url}\n`);
  say(`traffic: ${rate} requests/s through Traefik (${t.url}, HTTPRoute ${NAMESPACE}/payment-gateway) to the pods for at most ${seconds} s; a line every ${INTERVAL_MS / 1000} s: who answered`);

  const parent = process.ppid;
  const versions = new Set<string>();
  let before = { byVersion: {} as Record<string, number>, errors: 0 };
  let route = await servedWeights(t);
  live.ticker = setInterval(() => {
    void (async () => {
      if (process.ppid !== parent) return void stop(0, 'the demo is gone').then((c) => process.exit(c));
      const now = running.result;
      for (const p of data.served().values()) versions.add(p.version);
      for (const v of Object.keys(now.byVersion)) versions.add(v);
      const next = await servedWeights(t);
      const changed = JSON.stringify(next) !== JSON.stringify(route);
      route = next;
      if (stopping) return;
      say(splitLine(now, before, [...versions].sort(), route, changed));
      before = { byVersion: { ...now.byVersion }, errors: errorsOf(now) };
    })();
  }, INTERVAL_MS);
  await running.done;
  return stop(0, `the load reached its bound (${seconds} s at ${rate} requests/s); the data-plane lock is free again`);
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      say(`traffic: failed: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
