/** setHeaderRoute / setMirrorRoute steps in YAML: Argo's fields, managedRoutes, and refusal before anything runs when the router cannot serve them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { problems as problemsOf, release as releaseOf } from './helpers.ts';

const GW = 'argoproj-labs/gatewayAPI';
const services = { stableService: 'web-stable', canaryService: 'web-canary' };
const istio = { istio: { virtualService: { name: 'web-vs' } }, managedRoutes: [{ name: 'hdr' }, { name: 'mirror' }] };

/** These Releases carry the services and no default steps. */
const release = (canary: Record<string, unknown>) => releaseOf(canary, services);
const problems = (canary: Record<string, unknown>): string[] => problemsOf(canary, services);

test('Argo header and mirror steps normalise into the plan (percentage defaults to 100; an empty match removes the route)', () => {
  const plan = normalize([
    release({
      trafficRouting: istio,
      steps: [
        { setWeight: 10 },
        { setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X-Canary', headerValue: { exact: 'yes' } }, { headerName: 'User-Agent', headerValue: { regex: '.*Android.*' } }] } },
        { setMirrorRoute: { name: 'mirror', match: [{ method: { exact: 'POST' }, path: { prefix: '/orders' }, headers: { 'X-Team': { prefix: 'pay' } } }] } },
        { setMirrorRoute: { name: 'mirror', percentage: 20, match: [{ path: { regex: '^/v[0-9]+/' } }] } },
        { setHeaderRoute: { name: 'hdr' } },
      ],
    }),
  ]);
  assert.equal(plan.strategy.type, 'canary');
  const steps = plan.strategy.type === 'canary' ? plan.strategy.steps : [];
  assert.deepEqual(steps.slice(1), [
    { kind: 'setHeaderRoute', name: 'hdr', match: [{ headerName: 'X-Canary', headerValue: { exact: 'yes' } }, { headerName: 'User-Agent', headerValue: { regex: '.*Android.*' } }] },
    { kind: 'setMirrorRoute', name: 'mirror', percentage: 100, match: [{ method: { exact: 'POST' }, path: { prefix: '/orders' }, headers: { 'X-Team': { prefix: 'pay' } } }] },
    { kind: 'setMirrorRoute', name: 'mirror', percentage: 20, match: [{ path: { regex: '^/v[0-9]+/' } }] },
    { kind: 'setHeaderRoute', name: 'hdr', match: [] },
  ]);
  assert.deepEqual(planProblems(plan), []);
});

test('a Gateway API canary takes exact and regex header routes on a route with useHeaderRoutes', () => {
  const routing = { plugins: { [GW]: { httpRoutes: [{ name: 'a' }, { name: 'b', useHeaderRoutes: true }] } }, managedRoutes: [{ name: 'hdr' }] };
  assert.deepEqual(problems({ trafficRouting: routing, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X-A', headerValue: { regex: '^a' } }] } }] }), []);
});

test('a Gateway API canary (plugin form or native gatewayAPI) takes mirror routes (RequestMirror with percent)', () => {
  const step = { setMirrorRoute: { name: 'mirror', percentage: 35, match: [{ method: { exact: 'GET' }, path: { prefix: '/api' } }] } };
  assert.deepEqual(problems({ trafficRouting: { plugins: { [GW]: { httpRoute: 'r' } }, managedRoutes: [{ name: 'mirror' }] }, steps: [step] }), []);
  assert.deepEqual(problems({ trafficRouting: { gatewayAPI: { httpRoute: 'r' }, managedRoutes: [{ name: 'mirror' }] }, steps: [step] }), []);
});

test('steps no router can serve, and malformed steps, are refused with the step and field named', () => {
  const gw = (block: Record<string, unknown>, names = ['hdr']) => ({ plugins: { [GW]: block }, managedRoutes: names.map((name) => ({ name })) });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { exact: 'y' } }] } }] }, /steps\[0\]\.setHeaderRoute: setHeaderRoute needs a traffic router/],
    [{ trafficRouting: { istio: istio.istio }, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { exact: 'y' } }] } }] }, /steps\[0\]\.setHeaderRoute: setHeaderRoute "hdr" is not listed in trafficRouting\.managedRoutes \(none listed\)/],
    [{ trafficRouting: istio, steps: [{ setMirrorRoute: { name: 'other', match: [{ path: { exact: '/' } }] } }] }, /steps\[0\]\.setMirrorRoute: setMirrorRoute "other" is not listed in trafficRouting\.managedRoutes \("hdr", "mirror"\)/],
    [{ trafficRouting: { smi: {}, managedRoutes: [{ name: 'hdr' }] }, steps: [{ setMirrorRoute: { name: 'hdr', match: [{ path: { exact: '/' } }] } }] }, /steps\[0\]\.setMirrorRoute: setMirrorRoute cannot be served by the smi router/],
    [{ trafficRouting: { traefik: { weightedTraefikServiceName: 'w' }, managedRoutes: [{ name: 'hdr' }] }, steps: [{ setMirrorRoute: { name: 'hdr', match: [{ path: { exact: '/' } }] } }] }, /setMirrorRoute cannot be served by the traefik router: a weighted TraefikService has no mirroring/],
    [{ trafficRouting: { traefik: { weightedTraefikServiceName: 'w' }, managedRoutes: [{ name: 'hdr' }] }, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { exact: 'y' } }] } }] }, /setHeaderRoute cannot be served by the traefik router: a weighted TraefikService splits by weight only/],
    [{ trafficRouting: { gatewayAPI: { httpRoutes: [{ name: 'r' }] }, managedRoutes: [{ name: 'hdr' }] }, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { exact: 'y' } }] } }] }, /cannot be served by the gatewayAPI router: none of its httpRoutes has useHeaderRoutes: true/],
    [{ trafficRouting: gw({ httpRoutes: [{ name: 'r' }] }), steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { exact: 'y' } }] } }] }, /cannot be served by the argoproj-labs\/gatewayAPI router: none of its httpRoutes has useHeaderRoutes: true/],
    [{ trafficRouting: gw({ httpRoute: 'r' }), steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { prefix: 'y' } }] } }] }, /steps\[0\]\.setHeaderRoute: setHeaderRoute "hdr": the argoproj-labs\/gatewayAPI router cannot match a header by prefix/],
    [{ trafficRouting: istio, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { exact: 'y', regex: 'z' } }] } }] }, /setHeaderRoute\.match\[0\]\.headerValue: set one of exact, prefix, regex, not exact and regex/],
    [{ trafficRouting: istio, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'X', headerValue: { regex: '(' } }] } }] }, /headerValue\.regex: is not a valid regular expression/],
    [{ trafficRouting: istio, steps: [{ setHeaderRoute: { name: 'hdr', match: [{ headerName: 'bad header', headerValue: { exact: 'y' } }] } }] }, /headerName: must be an HTTP header name/],
    [{ trafficRouting: istio, steps: [{ setMirrorRoute: { name: 'mirror', percentage: 150, match: [{ path: { exact: '/' } }] } }] }, /setMirrorRoute\.percentage: Too big/i],
    [{ trafficRouting: istio, steps: [{ setMirrorRoute: { name: 'mirror', match: [{}] } }] }, /setMirrorRoute\.match\[0\]: set at least one of method, path, headers/],
    [{ trafficRouting: istio, steps: [{ setHeaderRoute: { name: 'hdr', headers: [] } }] }, /setHeaderRoute\.headers: unsupported field/],
  ];
  for (const [canary, expected] of cases) {
    const got = problems(canary);
    assert.ok(got.some((p) => expected.test(p)), `${JSON.stringify(canary)}: expected ${expected}, got ${JSON.stringify(got)}`);
  }
});

test('a removal (no match) needs the managedRoutes listing and a router that has such routes at all', () => {
  const istioRouting = { istio: { virtualService: { name: 'web-vs' } }, managedRoutes: [{ name: 'm' }] };
  assert.deepEqual(problems({ trafficRouting: istioRouting, steps: [{ setMirrorRoute: { name: 'm' } }] }), []);
  const smi = { smi: {}, managedRoutes: [{ name: 'm' }] };
  assert.ok(problems({ trafficRouting: smi, steps: [{ setMirrorRoute: { name: 'm' } }] }).some((p) => /steps\[0\]\.setMirrorRoute: setMirrorRoute cannot be served by the smi router/.test(p)));
});

test('nginx: one header per route and one header route at a time, refused at lint', () => {
  const nginx = { nginx: { stableIngress: 'web' }, managedRoutes: [{ name: 'a' }, { name: 'b' }] };
  const hdr = (name: string, n: number) => ({ setHeaderRoute: { name, match: Array.from({ length: n }, (_, i) => ({ headerName: `X-${i}`, headerValue: { exact: 'y' } })) } });
  assert.deepEqual(problems({ trafficRouting: nginx, steps: [hdr('a', 1), { setHeaderRoute: { name: 'a' } }, hdr('b', 1)] }), []);
  assert.ok(problems({ trafficRouting: nginx, steps: [hdr('a', 2)] }).some((p) => /steps\[0\]\.setHeaderRoute: setHeaderRoute "a" has 2 matches; the nginx router can match at most 1 header\(s\) per route/.test(p)), 'two matches');
  const both = problems({ trafficRouting: nginx, steps: [hdr('a', 1), hdr('b', 1)] });
  assert.ok(both.some((p) => /steps\[1\]\.setHeaderRoute: setHeaderRoute "b": the nginx router can have at most 1 header route\(s\) in place at a time, and "a", "b" would be/.test(p)), JSON.stringify(both));
});
