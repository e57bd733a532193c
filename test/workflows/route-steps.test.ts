/**
 * setHeaderRoute / setMirrorRoute canary steps under time skipping (stubbed activities): the
 * workflow calls the router activities with the step's route, in order with the weights, keeps the
 * routes in its status, clears them on promotion and abort, and refuses at start a plan whose router
 * cannot serve a step (nothing touched).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { abortUpdate, statusQuery } from '../../workflows/messages.ts';
import type { CanaryStep, ReleasePlan } from '../../model/types.ts';
import { Harness, plan, recordHistory, waitForStatus, releaseResult } from './harness.ts';

const h = new Harness();
before(() => h.start());
after(() => h.stop());

const istio = { istio: { virtualService: { name: 'web-vs' } }, managedRoutes: [{ name: 'canary-header' }, { name: 'mirror-api' }] };

function routed(name: string, steps: CanaryStep[], trafficRouting: Record<string, unknown> = istio): ReleasePlan {
  return plan(name, { type: 'canary', steps, stableService: `${name}-stable`, canaryService: `${name}-canary`, trafficRouting });
}

const header: CanaryStep = { kind: 'setHeaderRoute', name: 'canary-header', match: [{ headerName: 'X-Canary', headerValue: { exact: 'yes' } }] };
const mirror: CanaryStep = { kind: 'setMirrorRoute', name: 'mirror-api', percentage: 35, match: [{ method: { exact: 'GET' }, path: { prefix: '/api' } }] };

/** Call names with the route name for router steps: `setHeaderRoute(canary-header)`. */
function trace(p: ReleasePlan): string[] {
  return h.callsOf(p).map((c) => {
    const arg = c.args[1] as { name?: string } | number;
    if (c.name === 'setWeight') return `setWeight(${String(arg)})`;
    if (c.name === 'setHeaderRoute' || c.name === 'setMirrorRoute') return `${c.name}(${(arg as { name: string }).name})`;
    return c.name;
  });
}

describe('header and mirror route steps', () => {
  test('run in order with the weights, pass the route as given, show in status, and are gone after promotion', async () => {
    const p = routed('routes-happy', [{ kind: 'setWeight', weight: 10 }, header, mirror, { kind: 'pause' }, { kind: 'setHeaderRoute', name: 'canary-header', match: [] }, { kind: 'setWeight', weight: 50 }]);
    const handle = await h.begin(p);
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause after the routes');
    assert.deepEqual(trace(p), ['preflight', 'ensureCanary', 'setWeight(10)', 'setHeaderRoute(canary-header)', 'setMirrorRoute(mirror-api)']);
    assert.deepEqual(
      paused.managedRoutes?.map((r) => [r.name, r.kind, r.match, r.step]),
      [
        ['canary-header', 'header', 'X-Canary "yes"', 1],
        ['mirror-api', 'mirror', '35% of method "GET" and path prefix "/api"', 2],
      ],
    );
    const calls = h.callsOf(p);
    assert.deepEqual(calls[3]?.args[1], { name: 'canary-header', match: [{ headerName: 'X-Canary', headerValue: { exact: 'yes' } }] });
    assert.deepEqual(calls[4]?.args[1], { name: 'mirror-api', percentage: 35, match: [{ method: { exact: 'GET' }, path: { prefix: '/api' } }] });
    // Every activity receives the routing block with managedRoutes (the router reads its own block).
    assert.deepEqual((calls[3]?.args[0] as { trafficRouting?: unknown }).trafficRouting, istio);

    await handle.signal('promote', { by: 'alice' });
    const result = await releaseResult(handle);
    assert.equal(result.outcome, 'Promoted');
    // With a router, the canary takes all traffic while the stable rolls; it stays scaleDownDelaySeconds (30 s) after traffic left it, then goes.
    assert.deepEqual(trace(p).slice(5), ['setHeaderRoute(canary-header)', 'setWeight(50)', 'setWeight(100)', 'promoteCanary', 'removeCanary']);
    assert.deepEqual(h.callsOf(p)[5]?.args[1], { name: 'canary-header', match: [] });
    const status = await handle.query(statusQuery);
    assert.deepEqual(status.managedRoutes, []);
    const audit = status.audit.filter((a) => a.action === 'route-set' || a.action === 'route-removed').map((a) => `${a.action} ${a.detail}`);
    assert.deepEqual(audit, ['route-set header route canary-header: X-Canary "yes"', 'route-set mirror route mirror-api: 35% of method "GET" and path prefix "/api"', 'route-removed route canary-header']);
    await recordHistory(handle, 'canary-header-mirror-routes');
  });

  test('abort while a header route is in place: abortCanary (which removes managed routes) runs and the status forgets them', async () => {
    const p = routed('routes-abort', [{ kind: 'setWeight', weight: 20 }, header, { kind: 'pause' }]);
    const handle = await h.begin(p);
    const paused = await waitForStatus(handle, (s) => s.phase === 'Paused', 'pause');
    assert.equal(paused.managedRoutes?.length, 1);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'bob', reason: 'header users see errors' }] });
    // Traffic and routes go to stable first; the canary pods stay abortScaleDownDelaySeconds (30 s).
    const draining = await waitForStatus(handle, (s) => s.phase === 'Aborting' && /canary pods go in 30s/.test(s.message), 'traffic on stable, canary kept');
    assert.deepEqual(draining.managedRoutes, []);
    assert.equal(trace(p).at(-1), 'routeToStable');
    await h.env.sleep('30s');
    const aborted = await waitForStatus(handle, (s) => s.phase === 'Aborted', 'aborted');
    assert.deepEqual(aborted.managedRoutes, []);
    assert.deepEqual(trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'setHeaderRoute(canary-header)', 'routeToStable', 'abortCanary']);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'bob' }] }); // closes the retry window
    assert.equal((await releaseResult(handle)).outcome, 'Aborted');
  });

  test('a router activity that fails for good rolls the release back', async () => {
    const p = routed('routes-fail', [{ kind: 'setWeight', weight: 20 }, header, { kind: 'setWeight', weight: 40 }]);
    const { ApplicationFailure } = await import('@temporalio/common');
    const handle = await h.begin(p, {
      setHeaderRoute: async () => {
        throw ApplicationFailure.nonRetryable('VirtualService tests/web-vs already has a route "canary-header" that Glidepath did not add', 'InvalidSpec');
      },
    });
    await waitForStatus(handle, (s) => s.phase === 'RollingBack' && /canary pods go in/.test(s.message), 'traffic on stable, canary kept');
    await h.env.sleep('30s');
    const failed = await waitForStatus(handle, (s) => s.phase === 'RolledBack' || s.phase === 'Failed' || s.phase === 'Aborted', 'stopped');
    assert.match(failed.message, /setHeaderRoute: InvalidSpec: VirtualService tests\/web-vs already has a route "canary-header"/);
    assert.deepEqual(trace(p), ['preflight', 'ensureCanary', 'setWeight(20)', 'setHeaderRoute(canary-header)', 'routeToStable', 'abortCanary']);
    await handle.executeUpdate(abortUpdate, { args: [{ by: 'bob' }] });
    await releaseResult(handle);
  });

  test('a plan whose router cannot serve its steps fails at start, before any activity', async () => {
    const cases: [string, CanaryStep[], Record<string, unknown> | undefined, RegExp][] = [
      ['routes-no-router', [header], undefined, /strategy\.steps\.0: setHeaderRoute needs a traffic router/],
      ['routes-unlisted', [{ ...header, name: 'other' } as CanaryStep], istio, /setHeaderRoute "other" is not listed in trafficRouting\.managedRoutes \("canary-header", "mirror-api"\)/],
      ['routes-smi-mirror', [mirror], { smi: {}, managedRoutes: [{ name: 'mirror-api' }] }, /setMirrorRoute cannot be served by the smi router/],
      ['routes-gw-prefix', [{ kind: 'setHeaderRoute', name: 'h', match: [{ headerName: 'X-A', headerValue: { prefix: 'a' } }] }], { plugins: { 'argoproj-labs/gatewayAPI': { httpRoute: 'web' } }, managedRoutes: [{ name: 'h' }] }, /cannot match a header by prefix \(it can by exact, regex\)/],
    ];
    for (const [name, steps, routing, expected] of cases) {
      const p = routing ? routed(name, steps, routing) : plan(name, { type: 'canary', steps });
      const handle = await h.begin(p);
      const err = await releaseResult(handle).then(
        () => assert.fail(`${name} should fail`),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError, name);
      assert.match(String((err.cause as Error | undefined)?.message), expected, name);
      assert.deepEqual(trace(p), [], `${name}: nothing touched`);
    }
  });
});
