/** `trafficRouting`: the Argo blocks this build implements validate strictly; the rest are refused by name. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { problems, release } from './helpers.ts';


const services = { stableService: 'web-stable', canaryService: 'web-canary' };
const GW = 'argoproj-labs/gatewayAPI';

test('istio (host- and subset-based) and the Gateway API plugin are accepted and carried verbatim into the plan', () => {
  for (const canary of [
    { ...services, trafficRouting: { istio: { virtualService: { name: 'web-vs', routes: ['primary'] } } } },
    { ...services, trafficRouting: { istio: { virtualServices: [{ name: 'a' }, { name: 'b', routes: ['r1', 'r2'] }] } } },
    { trafficRouting: { istio: { virtualService: { name: 'web-vs' }, destinationRule: { name: 'web-dr', stableSubsetName: 'stable', canarySubsetName: 'canary' } } } },
    { ...services, trafficRouting: { plugins: { [GW]: { httpRoute: 'web-route', namespace: 'edge' } } } },
    { ...services, trafficRouting: { plugins: { [GW]: { httpRoutes: [{ name: 'a', useHeaderRoutes: true }] } } } },
    { ...services, trafficRouting: { gatewayAPI: { httpRoute: 'web-route', namespace: 'edge' } } },
    { ...services, trafficRouting: { traefik: { weightedTraefikServiceName: 'web-wts' } } },
    { ...services, trafficRouting: { gatewayAPI: { httpRoutes: [{ name: 'a', useHeaderRoutes: true }, { name: 'b' }] } } },
  ]) {
    const plan = normalize([release(canary)]);
    assert.equal(plan.strategy.type, 'canary');
    assert.deepEqual(plan.strategy.type === 'canary' ? plan.strategy.trafficRouting : undefined, canary.trafficRouting);
    assert.deepEqual(planProblems(plan), []);
  }
});

test('unsupported routers, plugins and fields are refused by name; routers that need Services say so', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...services, trafficRouting: { apisix: { route: { name: 'web' } } } }, /trafficRouting\.apisix: traffic router "apisix" is not supported .*supported: istio, gatewayAPI, plugins, nginx, alb, smi, traefik/],
    [{ ...services, trafficRouting: { gatewayAPI: {} } }, /trafficRouting\.gatewayAPI: needs httpRoute, httpRoutes, grpcRoute or grpcRoutes \(tcpRoute\/tlsRoute are not supported/],
    [{ ...services, trafficRouting: { gatewayAPI: { httpRoute: 'r', tcpRoute: 'g' } } }, /trafficRouting\.gatewayAPI: Unrecognized key: "tcpRoute"/],
    [{ trafficRouting: { gatewayAPI: { httpRoute: 'r' } } }, /the gatewayAPI router needs stableService and canaryService/],
    [{ trafficRouting: { traefik: { weightedTraefikServiceName: 'web-wts' } } }, /the traefik router needs stableService and canaryService/],
    [{ ...services, trafficRouting: { traefik: {} } }, /trafficRouting\.traefik\.weightedTraefikServiceName: /],
    [{ ...services, trafficRouting: { smi: { rootService: 'web', weight: 5 } } }, /trafficRouting\.smi: Unrecognized key: "weight"/],
    [{ ...services, trafficRouting: { alb: { ingress: 'web' } } }, /trafficRouting\.alb\.servicePort: /],
    [{ ...services, trafficRouting: { plugins: { 'acme/mesh': {} } } }, /plugin "acme\/mesh" is not supported/],
    [{ ...services, trafficRouting: { plugins: { [GW]: { tlsRoutes: [{ name: 'r' }] } } } }, /plugins\.argoproj-labs\/gatewayAPI: Unrecognized key: "tlsRoutes"/],
    [{ ...services, trafficRouting: { istio: { virtualService: { name: 'vs', tcpRoutes: [] } } } }, /Unrecognized key: "tcpRoutes"/],
    [{ ...services, trafficRouting: { istio: { virtualService: { name: 'vs' }, virtualServices: [{ name: 'x' }] } } }, /set exactly one of virtualService or virtualServices/],
    [{ ...services, trafficRouting: { istio: { virtualService: { name: 'vs' } }, managedRoutes: [{ name: 'h' }, { name: 'h' }] } }, /trafficRouting\.managedRoutes\[1\]\.name: "h" is listed twice/],
    [{ ...services, trafficRouting: { managedRoutes: [{ name: 'h' }] } }, /set a traffic router/],
    [{ trafficRouting: { istio: { virtualService: { name: 'vs' } } } }, /host-based Istio routing \(no destinationRule\) needs stableService and canaryService/],
    [{ trafficRouting: { plugins: { [GW]: { httpRoute: 'r' } } } }, /gatewayAPI router needs stableService and canaryService/],
    [{ ...services, trafficRouting: {} }, /set a traffic router/],
  ];
  for (const [canary, expected] of cases) {
    const found = problems(canary);
    assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(canary.trafficRouting)}: expected ${expected}, got ${JSON.stringify(found)}`);
  }
});
