/**
 * The Argo Rollouts side of bench/argo-compare.ts: its CRDs applied from the provisioned manifests, its
 * controller as a child process (built by scripts/provision-argo-rollouts.sh), and Rollouts with the
 * pod template of the bench's Deployments.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ApiextensionsV1Api, PatchStrategy, loadAllYaml, type KubernetesObjectApi, type KubeConfig, type KubernetesObject, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { RssSampler } from './rss.ts';

export const ROLLOUTS = { group: 'argoproj.io', version: 'v1alpha1', plural: 'rollouts' } as const;

/** Argo's canary step, as its Rollout spec writes it. */
export type ArgoStep = { setWeight: number } | { pause: { duration?: number } };

/** What the bench reads of a Rollout's status. */
export interface RolloutStatus {
  phase?: string;
  stableRS?: string;
  currentPodHash?: string;
  currentStepIndex?: number;
  observedGeneration?: string;
}
export type Rollout = KubernetesObject & { spec?: { template?: { spec?: { containers?: { image?: string }[] } } }; status?: RolloutStatus };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isNotFound = (err: unknown): boolean => (err as { code?: number }).code === 404;

/**
 * Creates the CRDs in `dir` (Argo's manifests/crds) that are not there yet and waits until they are
 * Established. Returns the names it created (the bench removes those, and only those, at the end).
 */
export async function applyArgoCrds(kc: KubeConfig, dir: string, late: () => boolean): Promise<string[]> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const crds = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadAllYaml(readFileSync(path.join(dir, f), 'utf8')) as V1CustomResourceDefinition[])
    .filter((c) => c?.kind === 'CustomResourceDefinition');
  const created: string[] = [];
  for (const crd of crds) {
    const name = crd.metadata?.name as string;
    const existing = await ext.readCustomResourceDefinition({ name }).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    if (existing) continue;
    await ext.createCustomResourceDefinition({ body: crd });
    created.push(name);
  }
  for (const crd of crds) {
    const name = crd.metadata?.name as string;
    for (;;) {
      const c = await ext.readCustomResourceDefinition({ name });
      if (c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True')) break;
      if (late()) throw new Error(`CRD ${name} not Established before the deadline`);
      await sleep(250);
    }
  }
  return created;
}

export async function deleteCrds(kc: KubeConfig, names: readonly string[]): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const name of names) await ext.deleteCustomResourceDefinition({ name }).catch(() => {}); // gone already
}

/** The bench's pod template: the containers of its Deployments (bench/support/workloads.ts). */
const podSpec = (image: string) => ({ containers: [{ name: 'app', image, readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }] });

/** A Rollout of `replicas` pods of image `image` (the pod template of the bench's Deployments) with these canary steps. */
export function rolloutBody(namespace: string, name: string, replicas: number, image: string, steps: readonly ArgoStep[]): Rollout {
  return {
    apiVersion: `${ROLLOUTS.group}/${ROLLOUTS.version}`,
    kind: 'Rollout',
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: podSpec(image) },
      strategy: { canary: { steps } },
    },
  } as Rollout;
}

/** The Rollout's pod template takes `image` (a JSON merge patch: custom resources take no strategic merge, so the whole one-container list is written). */
export async function setRolloutImage(objects: KubernetesObjectApi, namespace: string, name: string, image: string): Promise<void> {
  const patch = { apiVersion: `${ROLLOUTS.group}/${ROLLOUTS.version}`, kind: 'Rollout', metadata: { name, namespace }, spec: { template: { spec: podSpec(image) } } };
  await objects.patch(patch, undefined, undefined, 'glidepath-bench', undefined, PatchStrategy.MergePatch);
}

/**
 * The Argo Rollouts controller as a child process against KUBECONFIG: all namespaces, no leader
 * election, metrics and healthz on loopback ports given by the caller; its RSS sampled while it runs.
 */
export class ArgoController {
  readonly child: ChildProcess;
  readonly rss: RssSampler;
  private tail = '';

  constructor(bin: string, kubeconfig: string, ports: { metrics: number; healthz: number }) {
    this.child = spawn(
      path.join(bin, 'rollouts-controller'),
      ['--kubeconfig', kubeconfig, '--leader-elect=false', '--metricsport', String(ports.metrics), '--healthzPort', String(ports.healthz), '--loglevel', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POD_NAMESPACE: 'default' } },
    );
    const keep = (line: string) => void (this.tail = `${this.tail}\n${line}`.slice(-4000));
    createInterface({ input: this.child.stdout! }).on('line', keep);
    createInterface({ input: this.child.stderr! }).on('line', keep);
    this.rss = new RssSampler(this.child.pid as number);
  }

  /** Waits until its healthz answers (it has synced its informers), or throws with its log's tail. */
  async ready(healthzPort: number, late: () => boolean): Promise<void> {
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`the Argo Rollouts controller exited (${this.child.exitCode}): ${this.tail}`);
      const ok = await fetch(`http://127.0.0.1:${healthzPort}/healthz`).then((r) => r.ok, () => false);
      if (ok) return;
      if (late()) throw new Error(`the Argo Rollouts controller was not healthy before the deadline: ${this.tail}`);
      await sleep(500);
    }
  }

  get log(): string {
    return this.tail;
  }

  async stop(): Promise<void> {
    this.rss.stop();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
