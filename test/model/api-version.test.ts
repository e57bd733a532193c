/**
 * Pure tests (no servers) of what the API-versioning activities and workflow receive: the
 * `ApiVersion` document (defaults, every refusal naming its field), `--sunset` parsing, the
 * workflow's re-validation of a plan, and the header values (RFC 9745 Deprecation, RFC 8594 Sunset).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiVersionPlanProblems, deprecationHeaders, loadApiVersion, parseApiVersion, parseSunset } from '../../model/api-version.ts';

const doc = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'orders-v2', namespace: 'shop' }) => ({ apiVersion: 'glidepath.dev/v1alpha1', kind: 'ApiVersion', metadata, spec });
const NEW = { api: 'orders', version: 'v2', image: 'registry.local/orders:2.0', templateFrom: { deployment: 'orders-v1' }, route: { pathPrefix: '/v2', httpRoute: { name: 'orders' } } };

const problems = (spec: Record<string, unknown>) => parseApiVersion('f.yaml', doc(spec)).problems.map((p) => `${p.path}: ${p.message}`);

test('a new version with defaults', () => {
  const { plan } = parseApiVersion('f.yaml', doc(NEW));
  assert.deepEqual(plan, {
    namespace: 'shop',
    api: 'orders',
    version: 'v2',
    source: 'new',
    deployment: 'orders-v2',
    service: 'orders-v2',
    image: 'registry.local/orders:2.0',
    templateFrom: { deployment: 'orders-v1' },
    replicas: 1,
    port: 80,
    route: { kind: 'httpRoute', pathPrefix: '/v2', name: 'orders', namespace: 'shop' },
    approvers: [],
    progressDeadlineSeconds: 600,
  });
  assert.deepEqual(apiVersionPlanProblems(plan as never), []);
});

test('an existing version, on an Ingress, with retirement settings', () => {
  const { plan } = parseApiVersion(
    'f.yaml',
    doc({ api: 'orders', version: 'v1', existing: { deployment: 'orders', service: 'orders' }, route: { pathPrefix: '/v1', ingress: { name: 'orders', host: 'api.example.com' } }, retirement: { approvers: ['alice'], deprecationLink: 'https://docs.example.com/v1' }, progressDeadline: '5m' }),
  );
  assert.equal(plan?.source, 'existing');
  assert.equal(plan?.deployment, 'orders');
  assert.equal(plan?.replicas, undefined);
  assert.deepEqual(plan?.route, { kind: 'ingress', pathPrefix: '/v1', name: 'orders', host: 'api.example.com' });
  assert.deepEqual(plan?.approvers, ['alice']);
  assert.equal(plan?.progressDeadlineSeconds, 300);
  assert.deepEqual(apiVersionPlanProblems(plan as never), []);
});

test('every refusal names its field', () => {
  assert.deepEqual(problems({ ...NEW, route: { pathPrefix: '/v2' } }), ['spec.route: set exactly one of httpRoute and ingress']);
  assert.deepEqual(problems({ ...NEW, route: { pathPrefix: '/v2', httpRoute: { name: 'a' }, ingress: { name: 'b' } } }), ['spec.route: set exactly one of httpRoute and ingress']);
  assert.match(problems({ ...NEW, route: { pathPrefix: '/', httpRoute: { name: 'orders' } } })[0] ?? '', /^spec\.route\.pathPrefix: must be a path prefix/);
  assert.match(problems({ ...NEW, route: { pathPrefix: '/v2/', httpRoute: { name: 'orders' } } })[0] ?? '', /^spec\.route\.pathPrefix:/);
  assert.deepEqual(problems({ ...NEW, image: undefined }), ['spec.image: required for a new version (or register a running one with existing)']);
  assert.match(problems({ ...NEW, templateFrom: undefined })[0] ?? '', /^spec\.templateFrom: required for a new version/);
  assert.deepEqual(problems({ ...NEW, existing: { deployment: 'orders', service: 'orders' } }), [
    'spec.image: not with existing (an existing version is registered as it runs)',
    'spec.templateFrom: not with existing (an existing version is registered as it runs)',
  ]);
  assert.deepEqual(problems({ ...NEW, maxSurge: 1 }), ['spec.maxSurge: unsupported field (remove it or see docs/api-versioning.md)']);
  assert.match(problems({ ...NEW, version: 'V2' })[0] ?? '', /^spec\.version: must be a DNS-1123 label/);
  assert.match(problems({ ...NEW, replicas: 0 })[0] ?? '', /^spec\.replicas:/);
  assert.match(problems({ ...NEW, retirement: { deprecationLink: 'not a url' } })[0] ?? '', /^spec\.retirement\.deprecationLink: must be a URL/);
  assert.match(problems({ ...NEW, progressDeadline: 'soon' })[0] ?? '', /^spec\.progressDeadline: "soon" is not a duration/);
});

test('loadApiVersion wants exactly one ApiVersion', () => {
  assert.throws(() => loadApiVersion([{ source: 'a.yaml', doc: doc(NEW) }, { source: 'b.yaml', doc: doc(NEW) }]), (err: Error) => /expected exactly one ApiVersion document, found 2/.test(err.message));
  assert.throws(() => loadApiVersion([{ source: 'r.yaml', doc: { apiVersion: 'glidepath.dev/v1alpha1', kind: 'Release' } }]), (err: Error) => /r\.yaml: kind: expected ApiVersion/.test(err.message));
  assert.equal(loadApiVersion([{ source: 'a.yaml', doc: doc(NEW) }]).version, 'v2');
});

test('the workflow re-validates a plan from any client', () => {
  const { plan } = parseApiVersion('f.yaml', doc(NEW));
  assert.ok(plan);
  assert.deepEqual(apiVersionPlanProblems({ ...plan, deployment: 'something-else' }), ['deployment and service of a new version are named orders-v2']);
  assert.deepEqual(apiVersionPlanProblems({ ...plan, route: { ...plan.route, pathPrefix: 'v2' } }), ['route.pathPrefix: must be a path prefix such as /v2']);
  assert.deepEqual(apiVersionPlanProblems({ ...plan, replicas: 0 }), ['replicas: must be a whole number ≥ 1']);
});

test('--sunset: RFC 3339 date-time, a date (midnight UTC), or a duration from now', () => {
  const now = Date.parse('2026-11-23T04:00:00Z');
  assert.equal(parseSunset('2026-12-14T09:30:00Z', now), Date.parse('2026-12-14T09:30:00Z'));
  assert.equal(parseSunset('2026-12-14T09:30:00+02:00', now), Date.parse('2026-12-14T07:30:00Z'));
  assert.equal(parseSunset('2026-12-14', now), Date.parse('2026-12-14T00:00:00Z'));
  assert.equal(parseSunset('21d', now), now + 21 * 86_400_000);
  assert.equal(parseSunset('72h', now), now + 72 * 3_600_000);
  assert.throws(() => parseSunset('next tuesday', now), /neither an RFC 3339 date-time .* nor a duration/);
  assert.throws(() => parseSunset('2026-13-45T00:00:00Z', now), /not a valid date-time/);
});

test('header values: Deprecation @unix-seconds (RFC 9745), Sunset HTTP-date (RFC 8594), Link rel=deprecation', () => {
  const at = Date.parse('2026-11-23T04:00:00.750Z');
  const sunset = Date.parse('2026-12-14T00:00:00Z');
  assert.deepEqual(deprecationHeaders(at, sunset, 'https://docs.example.com/v1'), {
    Deprecation: '@1795406400',
    Sunset: 'Mon, 14 Dec 2026 00:00:00 GMT',
    Link: '<https://docs.example.com/v1>; rel="deprecation"; type="text/html"',
  });
  assert.deepEqual(deprecationHeaders(at, sunset, undefined), { Deprecation: '@1795406400', Sunset: 'Mon, 14 Dec 2026 00:00:00 GMT' });
});
