/**
 * Abort latency of the workload on the local control plane (scripts/kube.sh up): a 4-replica stable,
 * its canary at 50 % (2 ready pods), then the abortCanary activity (no traffic router). In parallel
 * with the abort, an independent poller (its own client, every 10 ms) reads the apiserver and notes
 * when the canary Deployment is at 0 replicas or gone, when it is gone, and when no canary pod is
 * left at all. Prints p50/p95 (nearest rank) of each, and of the activity call itself.
 * Env: KUBECONFIG (required), BENCH_RUNS (default 20, at least 20).
 */
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ReleaseTarget } from '../activities/contract.ts';
import { createKubeClients } from '../activities/kubernetes/client.ts';
import { createKubernetesWorkload, roleSelector } from '../activities/kubernetes/index.ts';

if (!process.env['KUBECONFIG']) {
  console.error('abort-latency: KUBECONFIG is not set; start the control plane with `bash scripts/kube.sh up` and `eval "$(bash scripts/kube.sh env)"`');
  process.exit(2);
}
const RUNS = Math.max(20, Number(process.env['BENCH_RUNS'] ?? 20));
const STABLE_IMAGE = 'example/web:1.0.0';

const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
// The poller's own clients and connection (kept open, so each poll is one request, not a TLS handshake).
const poller = createKubeClients(kc, { requestTimeoutMs: 10_000 });
const pollApps = poller.apps;
const pollCore = poller.core;
const workload = createKubernetesWorkload(kc, { heartbeat: () => undefined, pollIntervalMs: 100 });

const ns = `gp-bench-abort-${randomBytes(3).toString('hex')}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

await core.createNamespace({ body: { metadata: { name: ns } } });
try {
  for (let i = 0; ; i++) {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: ns });
      break;
    } catch {
      if (i > 100) throw new Error(`no default ServiceAccount in ${ns}`);
      await sleep(100);
    }
  }
  const stable = await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 4,
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: STABLE_IMAGE, readinessProbe: { httpGet: { path: '/', port: 8080 } } }] } },
      },
    },
  });
  const canaryPods = Object.entries(roleSelector(stable, 'canary')).map(([k, v]) => `${k}=${v}`).join(',');

  const activity: number[] = [];
  const zero: number[] = [];
  const gone: number[] = [];
  const podsGone: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const target: ReleaseTarget = {
      releaseId: `bench/${run}`,
      namespace: ns,
      workload: { kind: 'Deployment', name: 'web' },
      image: `example/web:2.0.${run}`,
      strategy: 'canary',
      progressDeadlineSeconds: 120,
    };
    await workload.ensureCanary(target);
    const { canaryReplicas } = await workload.scaleCanaryForWeight(target, 50);
    if (canaryReplicas !== 2) throw new Error(`expected 2 canary replicas, got ${canaryReplicas}`);

    const t0 = performance.now();
    let tZero: number | undefined;
    let tGone: number | undefined;
    let tPods: number | undefined;
    const poll = (async () => {
      while (tGone === undefined || tPods === undefined) {
        if (performance.now() - t0 > 60_000) throw new Error(`run ${run}: canary still there after 60 s`);
        if (tGone === undefined) {
          try {
            const d = await pollApps.readNamespacedDeployment({ name: 'web-canary', namespace: ns });
            if ((d.spec?.replicas ?? 1) === 0) tZero ??= performance.now();
          } catch (err) {
            if ((err as { code?: number }).code !== 404) throw err;
            tGone = performance.now();
            tZero ??= tGone;
          }
        }
        if (tPods === undefined) {
          const pods = await pollCore.listNamespacedPod({ namespace: ns, labelSelector: canaryPods });
          if (pods.items.length === 0) tPods = performance.now();
        }
        await sleep(10);
      }
    })();
    await workload.abortCanary(target, STABLE_IMAGE);
    const tActivity = performance.now();
    await poll;
    activity.push(tActivity - t0);
    zero.push((tZero as number) - t0);
    gone.push((tGone as number) - t0);
    podsGone.push((tPods as number) - t0);
    const s = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    if (s.spec?.replicas !== 4 || s.spec.template.spec?.containers[0]?.image !== STABLE_IMAGE) throw new Error(`run ${run}: the stable changed`);
  }

  const line = (name: string, xs: number[]): string => {
    const sorted = [...xs].sort((a, b) => a - b);
    return `abort-latency ${name.padEnd(26)} runs=${sorted.length} p50=${pct(sorted, 50).toFixed(0)} ms p95=${pct(sorted, 95).toFixed(0)} ms min=${(sorted[0] as number).toFixed(0)} ms max=${(sorted.at(-1) as number).toFixed(0)} ms`;
  };
  console.log(line('abortCanary returned', activity));
  console.log(line('canary at 0 replicas/gone', zero));
  console.log(line('canary Deployment gone', gone));
  console.log(line('no canary pod left', podsGone));
} finally {
  await core.deleteNamespace({ name: ns }).catch(() => undefined);
}
