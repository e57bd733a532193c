/**
 * How createActivities composes the workload and the traffic router: the order of effects is the
 * safety property (traffic never points at pods that are not there, or not ready).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createActivities } from '../../activities/index.ts';
import type { ReleaseTarget, TrafficRouter, WorkloadOps } from '../../activities/contract.ts';

function recorder() {
  const log: string[] = [];
  const workload = {
    preflight: async () => ({ stableImage: 'app:v1', replicas: 4, warnings: [] }),
    ensureCanary: async () => {},
    scaleCanaryForWeight: async (_t: ReleaseTarget, w: number, o?: { upOnly?: boolean }) => (log.push(`scale canary${o?.upOnly ? ' up only' : ''} for ${w}`), { canaryReplicas: 1 }),
    setCanaryScale: async () => ({ canaryReplicas: 1 }),
    promoteCanary: async (_t: ReleaseTarget, hooks?: { beforeCanaryRemoved?: () => Promise<void> }) => {
      log.push('stable takes the new image and is ready');
      await hooks?.beforeCanaryRemoved?.();
      log.push('canary removed');
    },
    removeCanary: async () => void log.push('canary removed'),
    abortCanary: async (_t: ReleaseTarget, _s: string | undefined, hooks?: { routeToStable?: { part: string; run: () => Promise<void> }[] }) => {
      for (const step of hooks?.routeToStable ?? []) await step.run();
      log.push('canary removed, stable restored');
      return { drift: [] };
    },
    deployPreview: async () => {},
    switchActive: async () => {},
    finalizeBlueGreen: async () => {},
    abortBlueGreen: async () => ({ drift: [] }),
  } satisfies WorkloadOps;
  const router: TrafficRouter = {
    type: 'istio',
    setWeight: async (_t, w) => void log.push(`route ${w}% to canary`),
    verifyWeight: async () => true,
    removeManagedRoutes: async () => void log.push('all traffic to stable, managed routes removed'),
  };
  return { log, acts: createActivities({ workload, routers: { istio: router } }) };
}

const target: ReleaseTarget = { releaseId: 'release-t-app', namespace: 't', workload: { kind: 'Deployment', name: 'app' }, image: 'app:v2', strategy: 'canary', trafficRouting: { istio: {} }, progressDeadlineSeconds: 60 };

test('setWeight scales the canary (up only) before traffic moves, and to its size (down) only after', async () => {
  const { log, acts } = recorder();
  await acts.setWeight(target, 25);
  assert.deepEqual(log, ['scale canary up only for 25', 'route 25% to canary', 'scale canary for 25']);
});

test('promotion moves all traffic to stable before the canary goes', async () => {
  const { log, acts } = recorder();
  await acts.promoteCanary(target);
  assert.deepEqual(log, ['stable takes the new image and is ready', 'all traffic to stable, managed routes removed', 'canary removed']);
});

test('abort moves all traffic to stable before the canary goes', async () => {
  const { log, acts } = recorder();
  await acts.abortCanary(target, 'app:v1');
  assert.deepEqual(log, ['route 0% to canary', 'all traffic to stable, managed routes removed', 'canary removed, stable restored']);
});

test('a router this worker lacks fails preflight, before anything is touched', async () => {
  const { log, acts } = recorder();
  await assert.rejects(acts.preflight({ ...target, trafficRouting: { nginx: {} } }), /traffic router "nginx" is not available on this worker/);
  assert.deepEqual(log, []);
});
