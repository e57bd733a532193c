/**
 * preflight against the real control plane: what it returns, and each named failure and warning.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createKubernetesWorkload } from '../../../activities/kubernetes/index.ts';
import { STABLE_IMAGE, TestCluster, target } from './cluster.ts';

const cluster = new TestCluster();
const strict = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined });
const lenient = createKubernetesWorkload(cluster.kc, { heartbeat: () => undefined, readinessProbe: 'warn' });

after(() => cluster.cleanup());

function failure(type: string, pattern: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(e)}`);
    assert.equal(e.type, type, e.message);
    assert.equal(e.nonRetryable, true);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('preflight', () => {
  test('a healthy workload: stable image, replicas, and a warning for the missing PDB only', async () => {
    const ns = await cluster.namespace('pre');
    await cluster.stable(ns, { replicas: 5 });
    const r = await strict.preflight(target(ns));
    assert.equal(r.stableImage, STABLE_IMAGE);
    assert.equal(r.replicas, 5);
    assert.equal(r.warnings.length, 1, JSON.stringify(r.warnings));
    assert.match(r.warnings[0] ?? '', /no PodDisruptionBudget/);

    // A PDB selecting the pods silences the warning; one selecting other pods does not.
    await cluster.policy.createNamespacedPodDisruptionBudget({ namespace: ns, body: { metadata: { name: 'other' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'other' } } } } });
    assert.equal((await strict.preflight(target(ns))).warnings.length, 1);
    await cluster.policy.createNamespacedPodDisruptionBudget({
      namespace: ns,
      body: { metadata: { name: 'web' }, spec: { maxUnavailable: 1, selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['frontend'] }] } } },
    });
    assert.deepEqual((await strict.preflight(target(ns))).warnings, []);
  });

  test('a missing workload is a NotFound naming namespace/name', async () => {
    const ns = await cluster.namespace('pre404');
    await assert.rejects(strict.preflight(target(ns, { workload: { kind: 'Deployment', name: 'nope' } })), failure('NotFound', new RegExp(`Deployment ${ns}/nope not found`)));
  });

  test('a missing target container is PreflightFailed listing the containers', async () => {
    const ns = await cluster.namespace('precont');
    await cluster.stable(ns);
    await assert.rejects(
      strict.preflight(target(ns, { workload: { kind: 'Deployment', name: 'web', container: 'api' } })),
      failure('PreflightFailed', /no container "api" \(containers: app, sidecar\)/),
    );
    const r = await lenient.preflight(target(ns, { workload: { kind: 'Deployment', name: 'web', container: 'sidecar' } }));
    assert.equal(r.stableImage, 'example/proxy:1', 'the named container, not the first');
    assert.ok(r.warnings.some((w) => w.includes('container sidecar') && w.includes('no readinessProbe')), 'the probe is checked on the named container');
  });

  test('no readiness probe: PreflightFailed by default, a warning with readinessProbe: warn', async () => {
    const ns = await cluster.namespace('preprobe');
    await cluster.stable(ns, { readinessProbe: false });
    await assert.rejects(strict.preflight(target(ns)), failure('PreflightFailed', /container app of Deployment .*\/web has no readinessProbe/));
    const r = await lenient.preflight(target(ns));
    assert.ok(r.warnings.some((w) => w.includes('no readinessProbe')), JSON.stringify(r.warnings));
  });

  test('a named Service that does not exist is a NotFound naming its role; blue/green needs an activeService', async () => {
    const ns = await cluster.namespace('presvc');
    await cluster.stable(ns);
    await assert.rejects(strict.preflight(target(ns, { canaryService: 'web-canary' })), failure('NotFound', new RegExp(`Service ${ns}/web-canary \\(the canaryService\\) not found`)));
    await assert.rejects(strict.preflight(target(ns, { strategy: 'blueGreen' })), failure('InvalidSpec', /needs an activeService/));
  });
});
