/** `trafficRouting.nginx`, `.alb` and `.smi` (Argo's fields): accepted blocks, refusals by name, and which header/mirror steps each can serve. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import { routerCapabilities, SUPPORTED_TRAFFIC_ROUTERS } from '../../model/traffic-routing.ts';
import { problems, release } from './helpers.ts';

const services = { stableService: 'web-stable', canaryService: 'web-canary' };


function refused(canary: Record<string, unknown>, expected: RegExp): void {
  const found = problems(canary);
  assert.ok(found.some((p) => expected.test(p)), `${JSON.stringify(canary)}: expected ${expected}, got ${JSON.stringify(found)}`);
}

test('nginx, alb and smi are listed as supported', () => {
  for (const key of ['nginx', 'alb', 'smi']) assert.ok(SUPPORTED_TRAFFIC_ROUTERS.includes(key), key);
});

test("Argo's nginx, alb and smi blocks are accepted and carried verbatim into the plan", () => {
  for (const routing of [
    { nginx: { stableIngress: 'web-ingress' } },
    { nginx: { stableIngresses: ['a', 'b.internal'], annotationPrefix: 'custom.nginx.example.com', additionalIngressAnnotations: { 'canary-by-cookie': 'beta' }, canaryIngressAnnotations: { 'example.com/scrape': 'true' } } },
    { alb: { ingress: 'web-ingress', servicePort: 80 } },
    { alb: { ingresses: ['a', 'b'], servicePort: 443, rootService: 'web-root', annotationPrefix: 'custom.alb.example.com', stickinessConfig: { enabled: true, durationSeconds: 3600 } } },
    { smi: {} },
    { smi: { rootService: 'web', trafficSplitName: 'web-split' } },
  ]) {
    const canary = { ...services, trafficRouting: routing };
    const plan = normalize([release(canary)]);
    assert.equal(plan.strategy.type, 'canary');
    assert.deepEqual(plan.strategy.type === 'canary' ? plan.strategy.trafficRouting : undefined, routing);
    assert.deepEqual(planProblems(plan), []);
  }
});

test('fields this version does not implement, and malformed blocks, are refused by name', () => {
  refused({ ...services, trafficRouting: { nginx: {} } }, /trafficRouting\.nginx: set exactly one of stableIngress or stableIngresses/);
  refused({ ...services, trafficRouting: { nginx: { stableIngress: 'a', stableIngresses: ['b'] } } }, /set exactly one of stableIngress or stableIngresses/);
  refused({ ...services, trafficRouting: { nginx: { stableIngress: 'Web_Ingress' } } }, /trafficRouting\.nginx\.stableIngress: must be a DNS-1123 subdomain/);
  refused({ ...services, trafficRouting: { nginx: { stableIngress: 'a', additionalIngressAnnotations: { x: 1 } } } }, /trafficRouting\.nginx\.additionalIngressAnnotations\.x/);
  refused({ ...services, trafficRouting: { nginx: { stableIngress: 'a', annotationPrefix: 'Not A Prefix' } } }, /trafficRouting\.nginx\.annotationPrefix: must be a DNS subdomain/);
  refused({ ...services, trafficRouting: { alb: { ingress: 'a', servicePort: 80, servicePorts: [{ ingress: 'a', servicePorts: [80] }] } } }, /trafficRouting\.alb: Unrecognized key: "servicePorts"/);
  refused({ ...services, trafficRouting: { alb: { ingress: 'a' } } }, /trafficRouting\.alb\.servicePort/);
  refused({ ...services, trafficRouting: { alb: { ingress: 'a', ingresses: ['b'], servicePort: 80 } } }, /set exactly one of ingress or ingresses/);
  refused({ ...services, trafficRouting: { alb: { ingress: 'a', servicePort: 70000 } } }, /trafficRouting\.alb\.servicePort/);
  refused({ ...services, trafficRouting: { alb: { ingress: 'a', servicePort: 80, stickinessConfig: { enabled: true, durationSeconds: 0 } } } }, /trafficRouting\.alb\.stickinessConfig\.durationSeconds/);
  refused({ ...services, trafficRouting: { smi: { trafficSplitName: 'web', weights: [] } } }, /trafficRouting\.smi: Unrecognized key: "weights"/);
  refused({ ...services, trafficRouting: { smi: {}, nginx: { stableIngress: 'a' } } }, /set one traffic router, this has smi and nginx/);
});

test('each of them needs stableService and canaryService', () => {
  refused({ trafficRouting: { nginx: { stableIngress: 'a' } } }, /the nginx router needs stableService and canaryService/);
  refused({ stableService: 'web-stable', trafficRouting: { alb: { ingress: 'a', servicePort: 80 } } }, /canaryService: the alb router needs stableService and canaryService/);
  refused({ trafficRouting: { smi: {} } }, /the smi router needs stableService and canaryService/);
});

test('header and mirror steps: what each router can serve is decided before anything runs', () => {
  const header = (name: string, headerValue: Record<string, string>) => ({ setHeaderRoute: { name, match: [{ headerName: 'X-Canary', headerValue }] } });
  const mirror = { setMirrorRoute: { name: 'm', match: [{ path: { prefix: '/' } }] } };
  const managed = [{ name: 'h' }, { name: 'm' }];

  // nginx: exact and regex header routes; no prefix; no mirror.
  const nginx = { nginx: { stableIngress: 'a' }, managedRoutes: managed };
  assert.deepEqual(problems({ ...services, trafficRouting: nginx, steps: [header('h', { exact: 'yes' }), header('h', { regex: '^q' })] }), []);
  refused({ ...services, trafficRouting: nginx, steps: [header('h', { prefix: 'y' })] }, /the nginx router cannot match a header by prefix \(it can by exact, regex\)/);
  refused({ ...services, trafficRouting: nginx, steps: [mirror] }, /setMirrorRoute cannot be served by the nginx router: an NGINX canary Ingress honours only canary-\* annotations/);
  refused(
    { ...services, trafficRouting: { nginx: { stableIngress: 'a', additionalIngressAnnotations: { 'canary-by-header': 'X-Canary' } }, managedRoutes: managed }, steps: [header('h', { exact: 'yes' })] },
    /setHeaderRoute cannot be served by the nginx router: its ingress annotations already set nginx\.ingress\.kubernetes\.io\/canary-by-header/,
  );

  // alb: exact header routes only; no mirror.
  const alb = { alb: { ingress: 'a', servicePort: 80 }, managedRoutes: managed };
  assert.deepEqual(problems({ ...services, trafficRouting: alb, steps: [header('h', { exact: 'yes' })] }), []);
  refused({ ...services, trafficRouting: alb, steps: [header('h', { regex: 'y' })] }, /the alb router cannot match a header by regex \(it can by exact\)/);
  refused({ ...services, trafficRouting: alb, steps: [mirror] }, /setMirrorRoute cannot be served by the alb router: an AWS Application Load Balancer has no traffic-mirroring action/);

  // smi: weights only.
  const smi = { smi: {}, managedRoutes: managed };
  refused({ ...services, trafficRouting: smi, steps: [header('h', { exact: 'yes' })] }, /setHeaderRoute cannot be served by the smi router: an SMI TrafficSplit splits by weight only/);
  refused({ ...services, trafficRouting: smi, steps: [mirror] }, /setMirrorRoute cannot be served by the smi router: an SMI TrafficSplit has no mirroring/);
});

test('the nginx capability entry declares one header route with one match', () => {
  const c = routerCapabilities({ nginx: { stableIngress: 'a' } });
  assert.equal(c?.capabilities.maxHeaderMatches, 1);
  assert.equal(c?.capabilities.maxHeaderRoutes, 1);
  assert.equal(routerCapabilities({ alb: { ingress: 'a', servicePort: 80 } })?.capabilities.maxHeaderMatches, undefined);
});
