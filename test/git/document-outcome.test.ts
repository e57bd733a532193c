/**
 * What the end of a release group or an API version started from Git means for Git
 * (activities/git/document-outcome.ts): which ends are written back as a revert, which leave Git as it
 * is (and why), which make the commit the file's last good one, and when the workflow ID no longer
 * holds what the source started. The statuses are the workflows' own shapes; the query path runs in
 * the end-to-end test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiVersionOutcome, groupOutcome } from '../../activities/git/document-outcome.ts';
import type { ApiStatus, VersionStatus } from '../../workflows/api-version-messages.ts';
import type { GroupCell, GroupStatus } from '../../workflows/group/messages.ts';
import type { ReleaseWatch } from '../../workflows/git-source/messages.ts';

const cell = (member: string, phase: GroupCell['phase'], message?: string): GroupCell => ({ member, cluster: 'prod-eu', wave: 'prod', phase, workflowId: `release_payments_${member}@prod-eu`, ...(message ? { message } : {}) });
const group = (phase: GroupStatus['phase'], cells: GroupCell[]) => ({ phase, message: `${phase}: gate prod failed`, name: 'payments/shop', cells });

test('a group is reverted when it rolled back or was aborted with every cell back; kept with a cell still on its image; Promoted succeeded; Failed kept; in flight it runs', () => {
  const id = 'group_payments_shop';
  for (const phase of ['RolledBack', 'Aborted'] as const) {
    const o = groupOutcome(group(phase, [cell('ledger', 'Compensated'), cell('cart', 'RolledBack'), cell('web', 'Skipped')]), id);
    assert.deepEqual(o, { state: 'settled', phase, message: `${phase}: gate prod failed`, revertOf: id, what: 'group payments/shop', writeBack: 'revert' });
  }
  const aborted = groupOutcome(group('Aborted', [cell('ledger', 'Promoted'), cell('cart', 'Aborted')]), id);
  assert.equal(aborted.state === 'settled' && aborted.writeBack, 'kept', 'an abort that compensated nothing (rollback-failed) leaves Git alone');
  assert.match(aborted.state === 'settled' ? (aborted.detail ?? '') : '', /^ledger@prod-eu still on the group's image/);
  const stuck = groupOutcome(group('RolledBack', [cell('ledger', 'Failed', 'compensation to registry.local:5000/ledger:v1 did not complete: timeout'), cell('cart', 'Failed', 'analysis failed')]), id);
  assert.equal(stuck.state === 'settled' && stuck.writeBack, 'kept', 'a compensation that did not complete leaves Git alone');
  assert.match(stuck.state === 'settled' ? (stuck.detail ?? '') : '', /^ledger@prod-eu still/);
  const promoted = groupOutcome(group('Promoted', [cell('ledger', 'Promoted')]), id);
  assert.equal(promoted.state === 'settled' && promoted.writeBack, 'succeeded');
  const failed = groupOutcome(group('Failed', [cell('ledger', 'Promoted'), cell('cart', 'RolledBack')]), id);
  assert.deepEqual(failed.state === 'settled' && [failed.writeBack, failed.detail], ['kept', undefined], 'Failed (only the failed member went back) is kept, as a failed release is');
  for (const phase of ['Running', 'Gate', 'Paused', 'Compensating'] as const) assert.deepEqual(groupOutcome(group(phase, []), id), { state: 'running', phase });
});

test('an API version is reverted when its introduction from this commit failed; serving succeeded; a later failure is kept; another introduction is gone', () => {
  const w: ReleaseWatch = { sourceId: 's', workflowId: 'api-shop-orders', file: 'deploy/orders-v3.yaml', commit: 'c'.repeat(40), kind: 'apiVersion' };
  const version = (phase: VersionStatus['phase'], message: string): VersionStatus => ({ version: 'v3', phase, message, plan: {} as never, introducedBy: 'git:dev@example.test', introducedAt: '2026-12-02T00:00:00Z' });
  const introduced = (reason: string) => ({ at: '2026-12-02T00:00:00Z', by: 'git:dev@example.test', action: 'introduce', accepted: true, reason, detail: 'v3 at /v3 → Service orders-v3 (registry.local:5000/orders:3.0)' });
  const ours = introduced(`from deploy/orders-v3.yaml at ${w.commit} of https://git.example.test/deploy (main)`);
  const api = (v: VersionStatus, audit = [ours]): Pick<ApiStatus, 'versions' | 'audit' | 'service'> => ({ service: 'shop/orders', versions: [v], audit });

  assert.deepEqual(apiVersionOutcome(api(version('Failed', 'Introducing: deployVersion: progress deadline exceeded')), w, 'v3'), {
    state: 'settled', phase: 'Failed', message: 'Introducing: deployVersion: progress deadline exceeded', revertOf: 'api-shop-orders/v3', what: 'API version shop/orders v3', writeBack: 'revert',
  });
  const late = apiVersionOutcome(api(version('Failed', 'Retiring: removeVersionRoute: forbidden')), w, 'v3');
  assert.equal(late.state === 'settled' && late.writeBack, 'kept', 'a failure after it served is not a failed introduction');
  for (const phase of ['Serving', 'Deprecated', 'Retired'] as const) {
    const o = apiVersionOutcome(api(version(phase, 'serving at /v3')), w, 'v3');
    assert.equal(o.state === 'settled' && o.writeBack, 'succeeded');
  }
  assert.deepEqual(apiVersionOutcome(api(version('Introducing', 'creating orders-v3')), w, 'v3'), { state: 'running', phase: 'Introducing' });
  const byHand = introduced('by hand');
  assert.deepEqual(apiVersionOutcome(api(version('Failed', 'Introducing: x'), [ours, byHand]), w, 'v3'), { state: 'gone' }, 'introduced again since: not ours');
  assert.deepEqual(apiVersionOutcome(api(version('Failed', 'Introducing: x')), { ...w, commit: 'd'.repeat(40) }, 'v3'), { state: 'gone' }, 'another commit');
  assert.deepEqual(apiVersionOutcome(api(version('Failed', 'Introducing: x')), w, 'v4'), { state: 'gone' }, 'no such version');
});
