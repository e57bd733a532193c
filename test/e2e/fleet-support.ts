/**
 * A fleet for the end-to-end group suites: more local control planes beside the one the harness
 * provides (scripts/kube.sh on free ports, each with its own state dir, started in parallel), and a
 * worker process per cluster polling `glidepath@<cluster>` with that cluster's kubeconfig only; the
 * services the group releases (a namespace with their Deployments in every cluster) and its file.
 * Shared by test/e2e/fleet.test.ts and bench/fleet.ts.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { freePort } from '../support/daemon.ts';
import { root, startWorker, suiteEnv } from './support.ts';

const run = promisify(execFile);

/** The control-plane binaries scripts/kube.sh runs, from the cache scripts/provision-kube.sh fills. */
const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok', 'kubectl'];

/** Why a fleet cannot run here (binaries not built), or undefined when it can. */
export function missingControlPlane(): string | undefined {
  const gomod = readFileSync(path.join(root, 'hack/kube/go.mod'), 'utf8');
  const version = /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(gomod)?.[1];
  const bin = path.join(process.env.GLIDEPATH_CACHE ?? path.join(os.homedir(), '.cache/glidepath'), `kube-${version}`, 'bin');
  const missing = COMPONENTS.filter((c) => !existsSync(path.join(bin, c)));
  return missing.length ? `control-plane binaries missing in ${bin}: ${missing.join(', ')} (bash scripts/provision-kube.sh builds them)` : undefined;
}

export interface Cluster {
  name: string;
  kubeconfig: string;
  apps: AppsV1Api;
  core: CoreV1Api;
  /** Stops the control plane this suite started and deletes its state (the harness's own is left alone). */
  stop(): Promise<void>;
}

function clients(kubeconfig: string): Pick<Cluster, 'apps' | 'core'> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
}

/** The control plane KUBECONFIG names (the harness's), under a cluster name. */
export function harnessCluster(name: string): Cluster {
  const kubeconfig = process.env.KUBECONFIG as string;
  return { name, kubeconfig, ...clients(kubeconfig), stop: async () => {} };
}

/**
 * Starts a fresh control plane (no CRDs) on free ports with its own state dir; or, when
 * `kubeconfig` is given (GLIDEPATH_FLEET_KUBECONFIGS, to iterate on a suite), uses that one.
 */
export async function startCluster(name: string, running?: string): Promise<Cluster> {
  if (running) return { name, kubeconfig: running, ...clients(running), stop: async () => {} };
  const state = await mkdtemp(path.join(os.tmpdir(), `glidepath-fleet-${name}-`));
  const [api, etcd, peer] = [await freePort(), await freePort(), await freePort()];
  const env = { ...process.env, GLIDEPATH_STATE: state, GLIDEPATH_KUBE_APISERVER_PORT: String(api), GLIDEPATH_ETCD_PORT: String(etcd), GLIDEPATH_ETCD_PEER_PORT: String(peer), GLIDEPATH_KUBE_NODES: '1' };
  const kube = (args: string[]) => run('bash', [path.join(root, 'scripts/kube.sh'), ...args], { env, maxBuffer: 16 << 20 });
  const stop = async () => {
    await kube(['down', '--purge']).catch(() => {});
    await rm(state, { recursive: true, force: true });
  };
  try {
    await kube(['up']);
  } catch (err) {
    await stop();
    throw new Error(`cluster ${name}: scripts/kube.sh up failed: ${(err as { stderr?: string }).stderr?.slice(-2000) ?? String(err)}`, { cause: err });
  }
  const kubeconfig = path.join(state, 'kube/kubeconfig');
  return { name, kubeconfig, ...clients(kubeconfig), stop };
}

/**
 * The worker of one cluster: `workers/main.ts` with GLIDEPATH_CLUSTER (its queue `glidepath@<name>`)
 * and that cluster's kubeconfig, nothing of the others'. `bundle` is a prebuilt workflow bundle.
 */
export function startClusterWorker(cluster: Pick<Cluster, 'name' | 'kubeconfig'>, bundle: string, extra: Record<string, string> = {}): Promise<ChildProcess> {
  const env = suiteEnv('', { GLIDEPATH_CLUSTER: cluster.name, KUBECONFIG: cluster.kubeconfig, GLIDEPATH_WORKFLOW_BUNDLE: bundle, ...extra });
  delete env.GLIDEPATH_TASK_QUEUE;
  return startWorker(env);
}

/** The parent's worker (group workflows, the task-queue check): a kubeconfig of no cluster at all. */
export async function startParentWorker(taskQueue: string, bundle: string, dir: string): Promise<ChildProcess> {
  const kubeconfig = path.join(dir, 'no-cluster.kubeconfig');
  // The Kubernetes client wants a current cluster: one with no server behind it and no credentials.
  await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{ name: none, cluster: { server: "https://127.0.0.1:1" } }]\nusers: [{ name: none, user: {} }]\ncontexts: [{ name: none, context: { cluster: none, user: none } }]\ncurrent-context: none\n');
  return startWorker(suiteEnv(taskQueue, { GLIDEPATH_WORKFLOW_BUNDLE: bundle, KUBECONFIG: kubeconfig }));
}

export const SERVICES = ['ledger', 'payments', 'checkout'] as const;
export const REPLICAS = 2;
const digest = (s: string) => `sha256:${Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64)}`;
/** The image a service runs at `version`, by digest (what compensation must return to exactly). */
export const serviceImage = (svc: string, version: string): string => `registry.local/${svc}@${digest(`${svc}-${version}`)}`;

/** Namespace `ns` in every cluster with the three services on v1 (by digest), available. */
export async function fleetNamespace(clusters: readonly Cluster[], ns: string): Promise<void> {
  await Promise.all(
    clusters.map(async (c) => {
      await c.core.createNamespace({ body: { metadata: { name: ns } } });
      for (const svc of SERVICES) {
        await c.apps.createNamespacedDeployment({
          namespace: ns,
          body: {
            metadata: { name: svc, labels: { app: svc } },
            spec: {
              replicas: REPLICAS,
              selector: { matchLabels: { app: svc } },
              template: { metadata: { labels: { app: svc } }, spec: { containers: [{ name: svc, image: serviceImage(svc, 'v1'), readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }] } },
            },
          },
        });
      }
    }),
  );
  for (const c of clusters) for (const svc of SERVICES) await untilAvailable(c, ns, svc);
}

async function untilAvailable(c: Cluster, ns: string, svc: string): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const d = await c.apps.readNamespacedDeployment({ name: svc, namespace: ns });
    if (d.status?.availableReplicas === REPLICAS && d.status.updatedReplicas === REPLICAS) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${svc} in ${c.name}/${ns} never became available`);
}

/**
 * Writes `<dir>/<name>.yaml`: the group taking the three services to `version` (ledger first, payments
 * and checkout after it; payments with an analysis step on the web metric `healthUrl`, which passes
 * on `{"ok": 1}`), waves `staging` then `prod`. Returns the file.
 */
export async function writeGroupFile(dir: string, o: { ns: string; name: string; version: string; healthUrl: string; waves: { name: string; clusters: string[] }[] }): Promise<string> {
  const member = (svc: string, deps: string[]) => {
    const analysis = svc === 'payments' ? ', { analysis: { templates: [{ templateName: health }] } }' : '';
    const template =
      svc === 'payments'
        ? `\n        - { apiVersion: argoproj.io/v1alpha1, kind: AnalysisTemplate, metadata: { name: health }, spec: { metrics: [{ name: health, successCondition: "result == 1", provider: { web: { url: "${o.healthUrl}", jsonPath: "{$.ok}" } } }] } }`
        : '';
    return `    - name: ${svc}
      dependsOn: [${deps.join(', ')}]
      inline:
        - { apiVersion: glidepath.dev/v1alpha1, kind: Release, metadata: { name: ${svc}, namespace: ${o.ns} }, spec: { workloadRef: { kind: Deployment, name: ${svc} }, image: "${serviceImage(svc, o.version)}", strategy: { canary: { steps: [{ setWeight: 50 }${analysis}] } } } }${template}
`;
  };
  const file = path.join(dir, `${o.name}.yaml`);
  await writeFile(
    file,
    `apiVersion: glidepath.dev/v1alpha1
kind: ReleaseGroup
metadata: { name: ${o.name}, namespace: ${o.ns} }
spec:
  members:
${member('ledger', [])}${member('payments', ['ledger'])}${member('checkout', ['ledger'])}  waves:
${o.waves.map((w) => `    - { name: ${w.name}, clusters: [${w.clusters.join(', ')}] }\n`).join('')}  onFailure: rollback-group
`,
  );
  return file;
}
