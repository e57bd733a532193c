/**
 * Full activity sequences through test/support/fault-proxy.ts (409, 429 with Retry-After, 500 and
 * connection resets before and after the apiserver acted), each activity retried as Temporal would
 * retry it: non-retryable failures stop, everything else is tried again after `nextRetryDelay` or
 * a backoff. Each sequence must converge to the same end state as the same sequence run without
 * faults. The injected and survived counts are printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, type Duration } from '@temporalio/common';
import type { WorkloadOps } from '../../../activities/contract.ts';
import { LABELS, createKubernetesWorkload } from '../../../activities/kubernetes/index.ts';
import { FAULT_KINDS, startFaultProxy, type FaultProxy } from '../../support/fault-proxy.ts';
import { STABLE_IMAGE, TestCluster, imageOf, sleep, target } from './cluster.ts';

const cluster = new TestCluster();
const direct = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, pollIntervalMs: 200 });
let proxy: FaultProxy;
let faulty: WorkloadOps;

const retries = { attempts: 0, retried: 0, byType: {} as Record<string, number> };
/** Per sequence: faults injected while it ran, and whether it reached the fault-free end state. */
const runs: { name: string; injected: number; converged: boolean }[] = [];

function durationMs(d: Duration | undefined): number | undefined {
  if (d === undefined) return undefined;
  if (typeof d === 'number') return d;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(String(d).trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

/** Temporal's activity retry, in small: non-retryable stops; otherwise nextRetryDelay or 100 ms × 2^n (≤ 1 s). */
async function retried<T>(what: string, run: () => Promise<T>, maxAttempts = 40): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    retries.attempts++;
    try {
      return await run();
    } catch (err) {
      if (err instanceof ApplicationFailure && err.nonRetryable) throw err;
      if (attempt >= maxAttempts) throw new Error(`${what}: still failing after ${attempt} attempts: ${(err as Error).message}`, { cause: err });
      retries.retried++;
      const type = err instanceof ApplicationFailure ? (err.type ?? 'Error') : 'Error';
      retries.byType[type] = (retries.byType[type] ?? 0) + 1;
      const delay = (err instanceof ApplicationFailure ? durationMs(err.nextRetryDelay ?? undefined) : undefined) ?? Math.min(100 * 2 ** (attempt - 1), 1000);
      await sleep(delay);
    }
  }
}

/** What a sequence leaves behind, independent of the namespace it ran in. */
async function endState(ns: string): Promise<unknown> {
  const names = await cluster.deploymentNames(ns);
  const stable = await cluster.deployment(ns, 'web');
  const services = (await cluster.core.listNamespacedService({ namespace: ns })).items.map((s) => ({
    name: s.metadata?.name,
    selector: s.spec?.selector,
    annotations: Object.keys(s.metadata?.annotations ?? {}).filter((k) => k.startsWith('glidepath.dev/')),
  }));
  // Canary and preview pods carry the app's labels too; a deleted role Deployment's pods go by
  // garbage collection at their own pace, so only the stable's own pods are compared.
  const stablePods = (await cluster.livePods(ns, { app: 'web' })).filter((p) => p.metadata?.labels?.[LABELS.role] === undefined);
  return {
    names,
    stable: {
      replicas: stable?.spec?.replicas,
      image: imageOf(stable),
      sidecar: imageOf(stable, 'sidecar'),
      previousImage: stable?.metadata?.annotations?.['glidepath.dev/previous-image'],
      release: stable?.metadata?.annotations?.['glidepath.dev/release'],
      available: stable?.status?.availableReplicas,
      updated: stable?.status?.updatedReplicas,
    },
    stablePodImages: stablePods.map((p) => p.spec?.containers.find((c) => c.name === 'app')?.image).sort(),
    services: services.sort((a, b) => String(a.name).localeCompare(String(b.name))),
  };
}

type Sequence = (w: WorkloadOps, ns: string, call: <T>(what: string, run: () => Promise<T>) => Promise<T>) => Promise<void>;

const RELEASE = 'faults/web';

const canaryPromote: Sequence = async (w, ns, call) => {
  const t = target(ns, { releaseId: RELEASE, stableService: 'web', canaryService: 'web-canary' });
  await call('preflight', () => w.preflight(t));
  await call('ensureCanary', () => w.ensureCanary(t));
  for (const weight of [10, 25, 50, 100]) await call(`setWeight(${weight})`, () => w.scaleCanaryForWeight(t, weight));
  await call('promoteCanary', () => w.promoteCanary(t));
};

const canaryAbort: Sequence = async (w, ns, call) => {
  const t = target(ns, { releaseId: RELEASE, stableService: 'web', canaryService: 'web-canary' });
  await call('preflight', () => w.preflight(t));
  await call('ensureCanary', () => w.ensureCanary(t));
  await call('setWeight(25)', () => w.scaleCanaryForWeight(t, 25));
  await call('setCanaryScale(3)', () => w.setCanaryScale(t, { replicas: 3 }, 25));
  await call('abortCanary', () => w.abortCanary(t, STABLE_IMAGE));
};

const blueGreen: Sequence = async (w, ns, call) => {
  const t = target(ns, { releaseId: RELEASE, strategy: 'blueGreen', activeService: 'web', previewService: 'web-canary' });
  await call('preflight', () => w.preflight(t));
  await call('deployPreview(1)', () => w.deployPreview(t, 1));
  await call('deployPreview()', () => w.deployPreview(t, undefined));
  await call('switchActive(preview)', () => w.switchActive(t, 'preview'));
  await call('switchActive(stable)', () => w.switchActive(t, 'stable'));
  await call('switchActive(preview)', () => w.switchActive(t, 'preview'));
  await call('finalizeBlueGreen', () => w.finalizeBlueGreen(t));
};

async function workloadNamespace(prefix: string): Promise<string> {
  const ns = await cluster.namespace(prefix);
  await cluster.stable(ns, { replicas: 4 });
  await cluster.service(ns, 'web', { app: 'web' });
  await cluster.service(ns, 'web-canary', { app: 'web' });
  return ns;
}

before(async () => {
  proxy = await startFaultProxy(cluster.kc, {
    rates: { conflict: 0.05, tooManyRequests: 0.03, serverError: 0.05, resetBefore: 0.04, resetAfter: 0.08 },
    retryAfterSeconds: 1,
    seed: 20260423,
  });
  faulty = createKubernetesWorkload(proxy.kubeConfig(), { heartbeat: () => undefined, pollIntervalMs: 200, requestTimeoutMs: 10_000 });
});

after(async () => {
  await proxy?.close();
  await cluster.cleanup();
  const survived = runs.filter((r) => r.converged).reduce((a, r) => a + r.injected, 0);
  const lines = [
    `fault proxy: ${proxy.counts.requests} requests, ${proxy.counts.forwarded} forwarded, ${proxy.totalInjected()} faults injected, ${survived} survived (injected during sequences that converged):`,
    ...FAULT_KINDS.map((k) => `  ${k.padEnd(16)} ${proxy.counts.injected[k]}`),
    `activity attempts: ${retries.attempts}, retried after a retryable failure: ${retries.retried} (${Object.entries(retries.byType).map(([k, v]) => `${k} ${v}`).join(', ')})`,
    `the other injected faults were absorbed inside rollout waits (transient read errors are polled through)`,
    ...runs.map((r) => `  ${r.converged ? 'converged' : 'DID NOT CONVERGE'}: ${r.name} (${r.injected} faults)`),
  ];
  console.log(lines.join('\n'));
});

describe('activities through injected apiserver faults', () => {
  for (const [name, sequence] of [
    ['canary 10/25/50/100 then promote', canaryPromote],
    ['canary then abort', canaryAbort],
    ['blue/green preview, switch, switch back, switch, finalize', blueGreen],
  ] as const) {
    test(`${name}: converges to the fault-free end state`, async () => {
      const reference = await workloadNamespace('ref');
      await sequence(direct, reference, (_what, run) => run());
      const expected = await endState(reference);

      const ns = await workloadNamespace('faults');
      const injectedBefore = proxy.totalInjected();
      const run = { name, injected: 0, converged: false };
      runs.push(run);
      try {
        await sequence(faulty, ns, retried);
      } finally {
        run.injected = proxy.totalInjected() - injectedBefore;
      }
      const got = await endState(ns);
      assert.deepEqual(got, expected);
      run.converged = true;
      assert.ok(run.injected > 0, 'faults were injected during the sequence');
    });
  }

  test('every kind of fault was injected at least once', () => {
    for (const k of FAULT_KINDS) assert.ok(proxy.counts.injected[k] > 0, `${k}: ${proxy.counts.injected[k]}`);
  });
});
