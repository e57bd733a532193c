/** Notification subscriptions at lint: valid ones reach the plan; bad ones are refused naming the field. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { idempotencyKey, renderTemplate, type NotificationEvent } from '../../model/notifications.ts';

function release(notifications: unknown): unknown {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'Release',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:v2', strategy: { canary: { steps: [{ setWeight: 50 }] } }, notifications },
  };
}

function problems(notifications: unknown): string[] {
  try {
    normalize([{ source: 'release.yaml', doc: release(notifications) }]);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

const ok = { name: 'ops', type: 'webhook', triggers: ['on-rollout-completed'], urlFrom: { secretKeyRef: { name: 'hooks', key: 'ops' } }, signingKeyFrom: { secretKeyRef: { name: 'hooks', key: 'hmac' } } };

test('a valid subscription reaches the plan, and the plan check accepts it', () => {
  const plan = normalize([{ source: 'release.yaml', doc: release([ok, { name: 'chat', type: 'slack', triggers: ['on-rollout-aborted'], url: 'https://hooks.example/x', template: '{{release.name}} at step {{step.number}}: {{message}}' }]) }]);
  assert.equal(plan.notifications?.length, 2);
  assert.deepEqual(plan.notifications?.[0], ok);
  assert.deepEqual(planProblems(plan), []);
});

test('an unknown trigger is refused naming the trigger and its field', () => {
  const p = problems([{ ...ok, triggers: ['on-rollout-completed', 'on-rollout-exploded'] }]);
  assert.deepEqual(p, [`release.yaml: spec.notifications[0].triggers[1]: unknown trigger "on-rollout-exploded"; triggers are on-rollout-updated, on-rollout-step-completed, on-scaling-replica-set, on-rollout-paused, on-analysis-run-running, on-analysis-run-failed, on-analysis-run-error, on-rollout-aborted, on-rollout-completed`]);
});

test('a template referencing a missing field is refused naming the template', () => {
  const p = problems([{ ...ok, template: '{{release.name}} by {{release.owner}}' }]);
  assert.equal(p.length, 1);
  assert.match(p[0] ?? '', /^release\.yaml: spec\.notifications\[0\]\.template: \{\{release\.owner\}\} is not a field of a notification; fields are trigger, /);
  assert.match(problems([{ ...ok, template: 'weight {{weight' }])[0] ?? '', /template: has "\{\{" without a closing "\}\}"/);
});

test('a URL that is not http(s) is refused naming url; url and urlFrom are exclusive', () => {
  const noRef = { name: ok.name, type: ok.type, triggers: ok.triggers, signingKeyFrom: ok.signingKeyFrom };
  assert.deepEqual(problems([{ ...noRef, url: 'ftp://hooks.example/x' }]), ['release.yaml: spec.notifications[0].url: must be an http(s) URL, not ftp:']);
  assert.deepEqual(problems([{ ...noRef, url: 'hooks.example/x' }]), ['release.yaml: spec.notifications[0].url: must be an http(s) URL such as https://hooks.example/releases']);
  assert.deepEqual(problems([{ ...noRef, url: 'https://u:p@hooks.example/x' }]), ['release.yaml: spec.notifications[0].url: must not carry credentials (put the URL in a Secret and use urlFrom)']);
  assert.deepEqual(problems([{ ...ok, url: 'https://hooks.example/x' }]), ['release.yaml: spec.notifications[0].url: set url or urlFrom (a Secret holding the URL), exactly one']);
});

test('other mistakes are named: unknown type, signing a Slack webhook, duplicate names, unknown fields', () => {
  assert.deepEqual(problems([{ ...ok, type: 'pager' }]), ['release.yaml: spec.notifications[0].type: must be one of webhook, slack, teams, cloudevents']);
  assert.deepEqual(problems([{ ...ok, type: 'slack' }]), ['release.yaml: spec.notifications[0].signingKeyFrom: slack incoming webhooks are not signed; signingKeyFrom is for webhook and cloudevents']);
  assert.deepEqual(problems([ok, ok]), ['release.yaml: spec.notifications[1].name: another subscription is named "ops"']);
  assert.match(problems([{ ...ok, token: 'x' }])[0] ?? '', /spec\.notifications\[0\]\.token: unsupported field/);
});

test('the workflow-start check refuses the same mistakes in a plan from any client', () => {
  const plan = normalize([{ source: 'release.yaml', doc: release([ok]) }]);
  assert.match(planProblems({ ...plan, notifications: [{ ...ok, triggers: ['on-nothing'] }] }).join('\n'), /notifications\.0\.triggers\.0: unknown trigger "on-nothing"/);
});

test('templates render the event; the idempotency key is the release run and the sequence', () => {
  const event: NotificationEvent = {
    sequence: 7,
    trigger: 'on-analysis-run-failed',
    at: '2026-01-01T00:00:00.000Z',
    release: { id: 'release_shop_web', runId: 'r1', namespace: 'shop', name: 'web', workload: 'web', attempt: 1 },
    phase: 'RollingBack',
    message: 'rolling back',
    step: { number: 2, total: 3, kind: 'analysis' },
    weight: 20,
    image: 'registry.local/web:v2',
    analysis: { name: 'success-rate', phase: 'Failed', metrics: [{ name: 'errors', phase: 'Failed', value: '[0.2]' }] },
  };
  assert.equal(renderTemplate('{{release.namespace}}/{{release.name}} step {{step.number}}/{{step.total}} {{weight}}% {{analysis.metrics}} {{stableImage}}|{{link}}', event, 'http://ui/x'), 'shop/web step 2/3 20% errors Failed ([0.2]) |http://ui/x');
  assert.equal(idempotencyKey(event), 'release_shop_web/r1/7');
});

test('webhook gates: Flagger types with defaults reach the plan; an unknown type, a bad URL or timeout is named', () => {
  const doc = (webhooks: unknown) => ({ ...(release(undefined) as { spec: object }), spec: { ...(release(undefined) as { spec: object }).spec, webhooks } });
  const plan = normalize([{ source: 'release.yaml', doc: doc([{ name: 'load', type: 'rollout', url: 'http://loadtester.test/', timeout: '30s', metadata: { cmd: 'hey -z 1m' } }]) }]);
  assert.deepEqual(plan.webhooks, [{ name: 'load', type: 'rollout', url: 'http://loadtester.test/', timeoutMs: 30_000, intervalMs: 15_000, retries: 3, metadata: { cmd: 'hey -z 1m' } }]);
  assert.deepEqual(planProblems(plan), []);
  const refused = (webhooks: unknown): string[] => {
    try {
      normalize([{ source: 'release.yaml', doc: doc(webhooks) }]);
    } catch (err) {
      if (err instanceof SpecError) return err.problems.map(formatProblem);
      throw err;
    }
    return [];
  };
  assert.match(refused([{ name: 'x', type: 'pre-flight', url: 'http://a.test/' }])[0] ?? '', /spec\.webhooks\[0\]\.type: must be one of confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event/);
  assert.deepEqual(refused([{ name: 'x', type: 'rollback', url: 'file:///etc/passwd' }]), ['release.yaml: spec.webhooks[0].url: must be an http(s) URL, not file:']);
  assert.deepEqual(refused([{ name: 'x', type: 'rollback', url: 'http://a.test/', timeout: '1h' }]), ['release.yaml: spec.webhooks[0].timeout: must be between 1s and 600s']);
});
