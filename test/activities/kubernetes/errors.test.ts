/**
 * Error classification and the pure object model (no cluster needed): which apiserver answers and
 * network failures are retried, the types and messages of the permanent ones, Retry-After, and
 * selector disjointness for every selector shape, why a rollout is stuck (from pod statuses), and the
 * canary/preview PodDisruptionBudget's budget.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiException, type V1Deployment, type V1LabelSelector, type V1Pod } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { roleBudget } from '../../../activities/kubernetes/capacity.ts';
import { describePodCauses, podCause } from '../../../activities/kubernetes/diagnose.ts';
import { classifyKubeError, retryAfterSeconds } from '../../../activities/kubernetes/errors.ts';
import { labelSelectorMatches, replicasForWeight, rolePodLabels, roleSelector, serviceSelectorMatches } from '../../../activities/kubernetes/objects.ts';

const site = { verb: 'patch', resource: 'deployments.apps', namespace: 'shop', name: 'web-canary' };
const apiError = (code: number, message: string, reason: string, headers: Record<string, string> = {}): ApiException<string> =>
  new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }), headers);

describe('classifyKubeError', () => {
  for (const [code, type] of [
    [400, 'BadRequest'],
    [401, 'Unauthorized'],
    [403, 'Forbidden'],
    [404, 'NotFound'],
    [422, 'Unprocessable'],
    [405, 'BadRequest'],
  ] as const) {
    test(`${code} → non-retryable ${type} naming verb, resource, object and the apiserver's message`, () => {
      const e = classifyKubeError(apiError(code, `the apiserver says ${code}`, 'Whatever'), site);
      assert.ok(e instanceof ApplicationFailure);
      assert.equal(e.nonRetryable, true);
      assert.equal(e.type, type);
      assert.equal(e.message, `patch deployments.apps shop/web-canary: the apiserver says ${code} (HTTP ${code} Whatever)`);
    });
  }

  for (const [code, type] of [
    [409, 'Conflict'],
    [500, 'ServerError'],
    [502, 'ServerError'],
    [504, 'ServerError'],
    [408, 'ServerError'],
    [410, 'ServerError'],
  ] as const) {
    test(`${code} → retryable (${type})`, () => {
      const e = classifyKubeError(apiError(code, 'try again', 'X'), site);
      assert.ok(e instanceof ApplicationFailure);
      assert.equal(e.nonRetryable, false);
      assert.equal(e.type, type);
    });
  }

  test('429 and 503 honour Retry-After through nextRetryDelay', () => {
    const e = classifyKubeError(apiError(429, 'too many requests', 'TooManyRequests', { 'retry-after': '7' }), site);
    assert.ok(e instanceof ApplicationFailure);
    assert.equal(e.nonRetryable, false);
    assert.equal(e.type, 'TooManyRequests');
    assert.equal(e.nextRetryDelay, '7s');
    const u = classifyKubeError(apiError(503, 'unavailable', 'ServiceUnavailable', { 'retry-after': '2' }), site) as ApplicationFailure;
    assert.equal(u.nonRetryable, false);
    assert.equal(u.nextRetryDelay, '2s');
    const none = classifyKubeError(apiError(429, 'too many requests', 'TooManyRequests'), site) as ApplicationFailure;
    assert.equal(none.nextRetryDelay, undefined, 'no header: the retry policy decides');
    assert.equal(retryAfterSeconds({ 'retry-after': new Date(Date.now() + 5000).toUTCString() }), 5);
    assert.equal(retryAfterSeconds({ 'retry-after': 'soon' }), undefined);
  });

  test('connection resets, refusals and timeouts → plain retryable Errors with context', () => {
    const reset = new TypeError('fetch failed', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const socket = new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    for (const err of [reset, refused, socket, timeout]) {
      const e = classifyKubeError(err, site);
      assert.ok(!(e instanceof ApplicationFailure), `${e.message} is a plain Error (retryable)`);
      assert.match(e.message, /^patch deployments.apps shop\/web-canary: (connection failed|request timed out)/);
    }
  });

  test('ApplicationFailures pass through; an aborted activity surfaces its cancellation', () => {
    const own = ApplicationFailure.nonRetryable('x', 'VerificationFailed');
    assert.equal(classifyKubeError(own, site), own);
    const ac = new AbortController();
    const reason = new Error('cancelled by the workflow');
    ac.abort(reason);
    assert.equal(classifyKubeError(new TypeError('fetch failed'), site, ac.signal), reason);
  });
});

describe('object model', () => {
  const stable = (selector: V1LabelSelector, labels: Record<string, string>): V1Deployment => ({
    metadata: { name: 'web' },
    spec: { selector, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'a:1' }] } } },
  });

  test('canary and preview pods keep the stable template labels (a Service selecting the workload reaches them); their own selector never matches a stable pod', () => {
    const cases: [V1LabelSelector, Record<string, string>][] = [
      [{ matchLabels: { app: 'web' } }, { app: 'web', tier: 'fe' }],
      [{ matchLabels: { app: 'web', tier: 'fe' } }, { app: 'web', tier: 'fe' }],
      [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'www'] }] }, { app: 'web' }],
      [{ matchExpressions: [{ key: 'app', operator: 'Exists' }] }, { app: 'web' }],
      [{ matchLabels: { app: 'x'.repeat(63) } }, { app: 'x'.repeat(63) }],
    ];
    for (const [selector, labels] of cases) {
      const d = stable(selector, labels);
      assert.ok(labelSelectorMatches(selector, labels), 'the fixture is consistent');
      for (const role of ['canary', 'preview'] as const) {
        const pod = rolePodLabels(d, role);
        for (const [k, v] of Object.entries(labels)) assert.equal(pod[k], v, `${role} pods keep ${k}=${v}`);
        assert.ok(serviceSelectorMatches(labels, pod), `a Service selecting ${JSON.stringify(labels)} has the ${role} pods as endpoints`);
        const own = roleSelector(d, role);
        assert.ok(Object.entries(own).every(([k, v]) => pod[k] === v), 'the role selector matches its own pods');
        assert.equal(Object.entries(own).every(([k, v]) => labels[k] === v), false, 'the role selector does not match stable pods');
        for (const v of Object.values(pod)) assert.ok(v.length <= 63 && /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v), `valid label value: ${v}`);
      }
      assert.equal(
        Object.entries(roleSelector(d, 'canary')).every(([k, v]) => rolePodLabels(d, 'preview')[k] === v),
        false,
        'canary and preview selectors are disjoint',
      );
    }
  });

  test('replica ratios', () => {
    assert.deepEqual([0, 1, 10, 25, 33, 50, 99, 100].map((w) => replicasForWeight(4, w)), [0, 1, 1, 1, 2, 2, 4, 4]);
    assert.equal(replicasForWeight(10, 30), 3);
    assert.equal(replicasForWeight(1, 1), 1, 'any weight above zero gets at least one pod');
  });
});

describe('why a rollout is stuck (diagnose.ts)', () => {
  const pod = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'p' }, status });
  test('the progress-deadline cause groups pods by what Kubernetes says: Unschedulable, image pull errors, not ready', () => {
    const pending = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: 3 Insufficient cpu.' }] });
    const pull = pod({
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True' }],
      containerStatuses: [{ name: 'app', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "example/web:9"' } } }],
    });
    const notReady = pod({ phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'False', message: 'containers with unready status: [app]' }] });
    const ready = pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] });
    assert.equal(
      describePodCauses([pending, pending, pull, notReady, ready]),
      'pods: 2 Pending (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.); 1 ImagePullBackOff (container app: Back-off pulling image "example/web:9"); 1 Running but not ready (containers with unready status: [app])',
    );
    assert.equal(describePodCauses([ready]), undefined, 'nothing to say when every pod is ready');
    assert.equal(podCause(pod({ phase: 'Running', conditions: [], containerStatuses: [{ name: 'app', image: 'x', imageID: '', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' } } }] })), 'CrashLoopBackOff (container app: back-off 40s restarting failed container)');
  });

  test('a canary/preview PodDisruptionBudget carries the user\'s budget', () => {
    assert.deepEqual(roleBudget({ spec: { minAvailable: 3 } }, 4), { maxUnavailable: 1 }, 'minAvailable 3 of 4: one pod at a time');
    assert.deepEqual(roleBudget({ spec: { minAvailable: 5 } }, 4), { maxUnavailable: 0 });
    assert.deepEqual(roleBudget({ spec: { minAvailable: '75%' } }, 4), { minAvailable: '75%' });
    assert.deepEqual(roleBudget({ spec: { maxUnavailable: 2 } }, 4), { maxUnavailable: 2 });
    assert.deepEqual(roleBudget({ spec: { maxUnavailable: '25%' } }, 4), { maxUnavailable: '25%' });
  });
});
