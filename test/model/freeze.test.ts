/**
 * Freeze windows at lint and in the worker's policy file: valid windows reach the plan; bad ones are
 * refused naming the field (nothing starts); weekly windows resolve to the right instants across a
 * daylight-saving change; worker windows apply only to the releases in their scope.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createFreezeActivities, freezePolicyFromEnv } from '../../activities/freeze.ts';
import { freezeAt, resolveFreeze, weeklyIntervals, type FreezeInterval } from '../../model/freeze.ts';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';

function release(freeze: unknown, strategy: unknown = { canary: { steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }] } }): unknown {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'Release',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:v2', strategy, freeze },
  };
}

function problems(freeze: unknown, strategy?: unknown): string[] {
  try {
    normalize([{ source: 'release.yaml', doc: release(freeze, strategy) }]);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}

const iso = (ms: number): string => new Date(ms).toISOString();

test('valid windows reach the plan as written, and the start-time check accepts them', () => {
  const freeze = {
    overriders: ['alice'],
    windows: [
      { name: 'year-end', start: '2026-12-20T00:00:00Z', end: '2027-01-04T00:00:00+01:00' },
      { name: 'weekend', before: 'step-3', weekly: { start: 'Fri 18:00', end: 'Mon 08:00', timeZone: 'Europe/Berlin' } },
      { name: 'no-promote', before: 'promotion', start: '2026-12-01T00:00:00Z', end: '2026-12-02T00:00:00Z' },
    ],
  };
  const plan = normalize([{ source: 'release.yaml', doc: release(freeze) }]);
  assert.deepEqual(plan.freeze, freeze);
  assert.deepEqual(planProblems(plan), []);
});

test('bad windows are refused at lint naming the field: unknown step, end before start, never opens, bad time zone, bad times', () => {
  const w = (extra: object) => ({ windows: [{ name: 'w', start: '2026-12-20T00:00:00Z', end: '2026-12-21T00:00:00Z', ...extra }] });
  assert.deepEqual(problems(w({ before: 'step-4' })), ['release.yaml: spec.freeze.windows[0].before: unknown step "step-4": this canary release has start, step-1, step-2, step-3, promotion']);
  assert.deepEqual(problems(w({ before: 'rollout' })), ['release.yaml: spec.freeze.windows[0].before: unknown step "rollout": this canary release has start, step-1, step-2, step-3, promotion']);
  assert.deepEqual(problems(w({ before: 'step-1' }), { blueGreen: { activeService: 'web', autoPromotionEnabled: true } }), [
    'release.yaml: spec.freeze.windows[0].before: unknown step "step-1": this blueGreen release has start, promotion',
  ]);
  assert.deepEqual(problems(w({ end: '2026-12-19T23:59:59Z' })), ['release.yaml: spec.freeze.windows[0].end: 2026-12-19T23:59:59Z is before start 2026-12-20T00:00:00Z']);
  assert.deepEqual(problems(w({ end: '2026-12-20T01:00:00+01:00' })), ['release.yaml: spec.freeze.windows[0].end: equals start: the window never opens']);
  assert.deepEqual(problems({ windows: [{ name: 'w', weekly: { start: 'Sat 00:00', end: 'Sat 00:00', timeZone: 'UTC' } }] }), ['release.yaml: spec.freeze.windows[0].weekly.end: equals weekly.start: the window never opens']);
  assert.deepEqual(problems({ windows: [{ name: 'w', weekly: { start: 'Fri 18:00', end: 'Mon 08:00', timeZone: 'Europe/Atlantis' } }] }), [
    'release.yaml: spec.freeze.windows[0].weekly.timeZone: unknown time zone "Europe/Atlantis" (an IANA name such as Europe/Berlin or UTC)',
  ]);
  assert.deepEqual(problems({ windows: [{ name: 'w', weekly: { start: 'Friday 6pm', end: 'Mon 08:00', timeZone: 'UTC' } }] }), ['release.yaml: spec.freeze.windows[0].weekly.start: must be a weekday and a 24-hour time, such as "Fri 18:00"']);
  assert.deepEqual(problems(w({ start: '2026-12-20' })), ['release.yaml: spec.freeze.windows[0].start: must be an RFC 3339 time with an offset, such as 2026-12-24T00:00:00Z']);
  assert.deepEqual(problems({ windows: [{ name: 'w', end: '2026-12-21T00:00:00Z' }] }), ['release.yaml: spec.freeze.windows[0].start: required with an absolute window (start and end)']);
  assert.deepEqual(problems({ windows: [{ name: 'w', start: '2026-12-20T00:00:00Z', end: '2026-12-21T00:00:00Z', weekly: { start: 'Fri 18:00', end: 'Mon 08:00', timeZone: 'UTC' } }] }), [
    'release.yaml: spec.freeze.windows[0].start: set start and end (absolute) or weekly, exactly one',
  ]);
  assert.deepEqual(problems({ windows: [] }), ['release.yaml: spec.freeze.windows: Too small: expected array to have >=1 items']);
  // A plan sent straight to the workflow meets the same check.
  const plan = normalize([{ source: 'release.yaml', doc: release(undefined) }]);
  assert.deepEqual(planProblems({ ...plan, freeze: { windows: [{ name: 'w', before: 'step-9', start: '2026-12-20T00:00:00Z', end: '2026-12-21T00:00:00Z' }] } }), [
    'freeze.windows.0.before: unknown step "step-9": this canary release has start, step-1, step-2, step-3, promotion',
  ]);
});

test('weekly windows resolve in their time zone, across a daylight-saving change', () => {
  const from = Date.parse('2027-03-17T12:00:00Z'); // a Wednesday; Berlin moves to summer time on Sunday 28 March
  const out = weeklyIntervals({ start: 'Fri 18:00', end: 'Mon 08:00', timeZone: 'Europe/Berlin' }, from, from + 14 * 86_400_000).map((i) => [iso(i.startMs), iso(i.endMs)]);
  assert.deepEqual(out, [
    ['2027-03-19T17:00:00.000Z', '2027-03-22T07:00:00.000Z'],
    ['2027-03-26T17:00:00.000Z', '2027-03-29T06:00:00.000Z'], // ends at 08:00 summer time
  ]);
  // A window in progress at `from` is included (it opened the week before).
  const inProgress = weeklyIntervals({ start: 'Tue 00:00', end: 'Thu 00:00', timeZone: 'UTC' }, from, from + 86_400_000);
  assert.deepEqual(inProgress.map((i) => [iso(i.startMs), iso(i.endMs)]), [['2027-03-16T00:00:00.000Z', '2027-03-18T00:00:00.000Z']]);
});

test('freezeAt: the interval holding a point now, the one ending last, none once overridden', () => {
  const i = (window: string, before: string, startMs: number, endMs: number): FreezeInterval => ({ window, before, startMs, endMs, overriders: [] });
  const all = [i('a', 'start', 0, 100), i('b', 'start', 50, 200), i('c', 'promotion', 0, 300)];
  assert.equal(freezeAt(all, 'start', 60)?.window, 'b');
  assert.equal(freezeAt(all, 'start', 200), undefined); // the end is exclusive
  assert.equal(freezeAt(all, 'start', 60, (x) => x.window === 'b')?.window, 'a');
  assert.equal(freezeAt(all, 'step-1', 60), undefined);
});

test('the worker policy file: scoped windows, validated at worker start naming the variable and field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'freeze-'));
  const file = join(dir, 'freeze.yaml');
  writeFileSync(
    file,
    [
      'overriders: [release-managers]',
      'windows:',
      '  - name: shop-freeze',
      '    namespaces: [shop]',
      '    start: 2026-12-20T00:00:00Z',
      '    end: 2026-12-21T00:00:00Z',
      '  - name: payments-only',
      '    workloads: [shop/payments]',
      '    before: promotion',
      '    start: 2026-12-20T00:00:00Z',
      '    end: 2026-12-21T00:00:00Z',
    ].join('\n'),
  );
  const policy = freezePolicyFromEnv({ GLIDEPATH_FREEZE_POLICY_FILE: file });
  const acts = createFreezeActivities(policy);
  const from = Date.parse('2026-12-19T00:00:00Z');
  const web = await acts.freezeWindows(null, { namespace: 'shop', workload: 'web' }, from);
  assert.deepEqual(web.intervals, [{ window: 'worker/shop-freeze', before: 'start', startMs: Date.parse('2026-12-20T00:00:00Z'), endMs: Date.parse('2026-12-21T00:00:00Z'), overriders: ['release-managers'] }]);
  assert.deepEqual((await acts.freezeWindows(null, { namespace: 'shop', workload: 'payments' }, from)).intervals.map((x) => x.window), ['worker/shop-freeze', 'worker/payments-only']);
  assert.deepEqual((await acts.freezeWindows(null, { namespace: 'blog', workload: 'web' }, from)).intervals, []);
  // A release's own windows carry its own overriders; the worker's carry the worker's.
  const both = resolveFreeze({ windows: [{ name: 'mine', start: '2026-12-19T06:00:00Z', end: '2026-12-19T07:00:00Z' }], overriders: ['alice'] }, policy, { namespace: 'shop', workload: 'web' }, from);
  assert.deepEqual(both.intervals.map((x) => [x.window, x.overriders]), [['release/mine', ['alice']], ['worker/shop-freeze', ['release-managers']]]);
  assert.equal(freezePolicyFromEnv({}), undefined);

  writeFileSync(file, 'windows:\n  - name: w\n    before: step-2\n    start: 2026-12-20T00:00:00Z\n    end: 2026-12-21T00:00:00Z\n');
  assert.throws(() => freezePolicyFromEnv({ GLIDEPATH_FREEZE_POLICY_FILE: file }), { message: 'GLIDEPATH_FREEZE_POLICY_FILE: windows.0.before: must be start or promotion (a worker-wide window cannot name a step)' });
  writeFileSync(file, 'windows:\n  - name: w\n    weekly: {start: "Sat 00:00", end: "Sun 00:00", timeZone: Moon/Base}\n');
  assert.throws(() => freezePolicyFromEnv({ GLIDEPATH_FREEZE_POLICY_FILE: file }), { message: 'GLIDEPATH_FREEZE_POLICY_FILE: windows.0.weekly.timeZone: unknown time zone "Moon/Base" (an IANA name such as Europe/Berlin or UTC)' });
  assert.throws(() => freezePolicyFromEnv({ GLIDEPATH_FREEZE_POLICY_FILE: join(dir, 'missing.yaml') }), /GLIDEPATH_FREEZE_POLICY_FILE .*missing.yaml cannot be read: ENOENT/);
});
