/**
 * GRPCRoutes in the Gateway API block (`grpcRoute` / `grpcRoutes`, Argo's plugin fields, also under the
 * native `gatewayAPI` key): accepted and carried verbatim into the plan, alone or with HTTPRoutes;
 * malformed fields refused with the field named; header routes served on GRPCRoutes with
 * useHeaderRoutes; mirror routes refused by name when the block names a GRPCRoute.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { problems as problemsOf, release as releaseOf } from './helpers.ts';

const GW = 'argoproj-labs/gatewayAPI';
const services = { stableService: 'web-stable', canaryService: 'web-canary' };
const release = (canary: Record<string, unknown>) => releaseOf(canary, services);
const problems = (canary: Record<string, unknown>): string[] => problemsOf(canary, services);
const PREFIX = 'r.yaml: spec.strategy.canary.trafficRouting.';

test('grpcRoute and grpcRoutes (plugin form and native key, alone or with HTTPRoutes) are accepted and carried verbatim into the plan', () => {
  for (const trafficRouting of [
    { plugins: { [GW]: { grpcRoute: 'web-grpc' } } },
    { plugins: { [GW]: { grpcRoutes: [{ name: 'a', useHeaderRoutes: true }, { name: 'b' }], namespace: 'edge' } } },
    { gatewayAPI: { grpcRoute: 'web-grpc', namespace: 'edge' } },
    { gatewayAPI: { httpRoute: 'web-http', grpcRoutes: [{ name: 'web-grpc', useHeaderRoutes: false }] } },
  ]) {
    const plan = normalize([release({ trafficRouting, steps: [{ setWeight: 10 }] })]);
    assert.equal(plan.strategy.type, 'canary');
    assert.deepEqual(plan.strategy.type === 'canary' ? plan.strategy.trafficRouting : undefined, trafficRouting);
    assert.deepEqual(planProblems(plan), []);
  }
});

test('malformed grpcRoute/grpcRoutes fields are refused with the field named; unsupported sub-fields stay named errors', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ plugins: { [GW]: { grpcRoute: 'Bad_Name' } } }, 'plugins.argoproj-labs/gatewayAPI.grpcRoute: must be a DNS-1123 label (lowercase letters, digits, "-")'],
    [{ gatewayAPI: { grpcRoutes: [] } }, 'gatewayAPI.grpcRoutes: Too small: expected array to have >=1 items'],
    [{ gatewayAPI: { grpcRoutes: [{ name: 'a', weight: 1 }] } }, 'gatewayAPI.grpcRoutes[0]: Unrecognized key: "weight"'],
    [{ gatewayAPI: { grpcRoutes: [{ name: 'a', useHeaderRoutes: 'yes' }] } }, 'gatewayAPI.grpcRoutes[0].useHeaderRoutes: Invalid input: expected boolean, received string'],
    [{ gatewayAPI: { grpcRoute: 'a', grpcRouteSelector: {} } }, 'gatewayAPI: Unrecognized key: "grpcRouteSelector"'],
    [{ gatewayAPI: { namespace: 'edge' } }, 'gatewayAPI: needs httpRoute, httpRoutes, grpcRoute or grpcRoutes (tcpRoute/tlsRoute are not supported by this version of Glidepath)'],
  ];
  for (const [trafficRouting, expected] of cases) {
    assert.deepEqual(problems({ trafficRouting, steps: [{ setWeight: 10 }] }), [PREFIX + expected], JSON.stringify(trafficRouting));
  }
});

test('header routes are served on GRPCRoutes with useHeaderRoutes (grpcRoute always has it); mirror routes are refused by name when a GRPCRoute is named', () => {
  const header = { setHeaderRoute: { name: 'hdr', match: [{ headerName: 'x-canary', headerValue: { exact: 'yes' } }] } };
  const mirror = { setMirrorRoute: { name: 'hdr', percentage: 10, match: [{ path: { prefix: '/' } }] } };
  const routing = (block: Record<string, unknown>) => ({ plugins: { [GW]: block }, managedRoutes: [{ name: 'hdr' }] });
  assert.deepEqual(problems({ trafficRouting: routing({ grpcRoute: 'g' }), steps: [header] }), []);
  assert.deepEqual(problems({ trafficRouting: routing({ grpcRoutes: [{ name: 'g', useHeaderRoutes: true }] }), steps: [header] }), []);
  assert.deepEqual(problems({ trafficRouting: routing({ httpRoutes: [{ name: 'h' }], grpcRoutes: [{ name: 'g' }] }), steps: [header] }), [
    'r.yaml: spec.strategy.canary.steps[0].setHeaderRoute: setHeaderRoute cannot be served by the argoproj-labs/gatewayAPI router: none of its httpRoutes or grpcRoutes has useHeaderRoutes: true',
  ]);
  assert.deepEqual(problems({ trafficRouting: { gatewayAPI: { grpcRoute: 'g' }, managedRoutes: [{ name: 'hdr' }] }, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'x', headerValue: { prefix: 'y' } }] } }] }), [
    'r.yaml: spec.strategy.canary.steps[0].setHeaderRoute: setHeaderRoute "hdr": the gatewayAPI router cannot match a header by prefix (it can by exact, regex)',
  ]);
  for (const block of [{ grpcRoute: 'g' }, { httpRoute: 'h', grpcRoutes: [{ name: 'g' }] }]) {
    assert.deepEqual(problems({ trafficRouting: routing(block), steps: [mirror] }), [
      "r.yaml: spec.strategy.canary.steps[0].setMirrorRoute: setMirrorRoute cannot be served by the argoproj-labs/gatewayAPI router: its grpcRoute/grpcRoutes: mirror routes are not supported on GRPCRoutes (Argo's Gateway API plugin does not mirror either; docs/traffic.md)",
    ]);
  }
  assert.deepEqual(problems({ trafficRouting: routing({ httpRoute: 'h' }), steps: [mirror] }), [], 'an HTTPRoute-only block still mirrors');
});
