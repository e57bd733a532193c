/**
 * End to end, v1 → v2 → retire v1: the Temporal dev server, the real worker process and the local
 * control plane with the Gateway API CRDs, driven through `bin/glidepath api` (and one signal
 * through the `temporal` CLI). v1 runs as users run it (Deployment, Service, an HTTPRoute rule
 * /v1 next to a hand-added /admin rule); Glidepath registers it, introduces v2 beside it, then
 * retires v1 with a short sunset: headers, timer, four-eyes approval, /v1 route gone, v1 at 0
 * replicas, v2 and the hand rule untouched. Needs KUBECONFIG, TEMPORAL_ADDRESS and TEMPORAL_CLI.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import type { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { Client } from '@temporalio/client';
import { apiStatusQuery, type ApiStatus } from '../../workflows/api-version-messages.ts';
import { untilQuery } from '../support/poll.ts';
import { createHttpRoute } from '../support/gateway-api.ts';
import { cli as runCli, connectClient, findDeployment, killWorker, kube, randomSuffix, startWorker, suiteEnv, temporalAddress, tempDir, waitAvailable } from './support.ts';

const run = promisify(execFile);
const suffix = randomSuffix();
const env = suiteEnv(`e2e-apiv-${suffix}`);
const ns = `e2e-apiv-${suffix}`;
const id = `api-${ns}-orders`;
const G = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };
const HAND_RULE = { name: 'admin', matches: [{ path: { type: 'PathPrefix', value: '/admin' } }], backendRefs: [{ name: 'admin-svc', port: 80 }] };

let apps: AppsV1Api;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let client: Client;
let worker: ChildProcess | undefined;
let dir: string;

interface Route {
  spec: { rules: { name?: string; matches?: { path?: { value?: string } }[]; filters?: { responseHeaderModifier?: { set?: { name: string; value: string }[] } }[] }[] };
}
const readRoute = async (): Promise<Route> => (await custom.getNamespacedCustomObject({ ...G, namespace: ns, name: 'orders' })) as Route;
const ruleFor = (r: Route, p: string) => r.spec.rules.find((x) => x.matches?.some((m) => m.path?.value === p));
const cli = (args: string[]) => runCli(env, args);

const until = (pred: (s: ApiStatus) => boolean, what: string, timeoutMs = 90_000): Promise<ApiStatus> =>
  untilQuery(client.workflow.getHandle(id), apiStatusQuery, pred, what, {
    timeoutMs,
    intervalMs: 200,
    show: (last) => JSON.stringify(last?.versions.map((v) => [v.version, v.phase, v.message])),
  });
const phase = (s: ApiStatus, v: string) => s.versions.find((x) => x.version === v)?.phase;

before(async () => {
  ({ apps, core, custom } = kube());
  assert.ok(process.env.TEMPORAL_CLI, 'TEMPORAL_CLI must name the Temporal CLI binary (scripts/test.sh sets it)');
  dir = await tempDir('apiv');
  client = await connectClient();

  // v1 as it runs before Glidepath knows it.
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: 'orders-v1' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'orders', version: 'v1' } },
        template: {
          metadata: { labels: { app: 'orders', version: 'v1', tier: 'api' } },
          spec: { containers: [{ name: 'orders', image: 'registry.local/orders:1.0', ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }] },
        },
      },
    },
  });
  await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'orders-v1' }, spec: { selector: { app: 'orders', version: 'v1' }, ports: [{ port: 80, targetPort: 8080 }] } } });
  await createHttpRoute(custom, ns, 'orders', { parentRefs: [{ name: 'gw' }], hostnames: ['api.example.com'], rules: [HAND_RULE, { matches: [{ path: { type: 'PathPrefix', value: '/v1' } }], backendRefs: [{ name: 'orders-v1', port: 80 }] }] });
  await waitAvailable(apps, ns, 'orders-v1', 2);
  worker = await startWorker(env);
});

after(async () => {
  await client?.workflow.getHandle(id).terminate('e2e done').catch(() => undefined);
  await killWorker(worker, 'SIGTERM');
  await client?.connection.close();
  await core?.deleteNamespace({ name: ns }).catch(() => undefined);
});

test('v1 serving → introduce v2 → retire v1 (headers, worker SIGKILL during the sunset, four-eyes approval) → /v1 gone, v1 at 0, v2 untouched', async () => {
  const v1File = path.join(dir, 'v1.yaml');
  const v2File = path.join(dir, 'v2.yaml');
  await writeFile(
    v1File,
    `apiVersion: glidepath.dev/v1alpha1
kind: ApiVersion
metadata: { name: orders-v1, namespace: ${ns} }
spec:
  api: orders
  version: v1
  existing: { deployment: orders-v1, service: orders-v1 }
  route: { pathPrefix: /v1, httpRoute: { name: orders } }
  retirement: { approvers: [alice, bob], deprecationLink: "https://docs.example.com/orders/v1-sunset" }
`,
  );
  await writeFile(
    v2File,
    `apiVersion: glidepath.dev/v1alpha1
kind: ApiVersion
metadata: { name: orders-v2, namespace: ${ns} }
spec:
  api: orders
  version: v2
  image: registry.local/orders:2.0
  templateFrom: { deployment: orders-v1 }
  replicas: 2
  route: { pathPrefix: /v2, httpRoute: { name: orders } }
`,
  );
  const routeAtStart = await readRoute();
  const v1Rule = JSON.stringify(ruleFor(routeAtStart, '/v1'));
  const handRule = JSON.stringify(routeAtStart.spec.rules.find((r) => r.name === 'admin'));

  // Register v1 (the workflow starts here, by update-with-start), then introduce v2.
  const reg = await cli(['api', 'introduce', '-f', v1File, '--wait', '--timeout', '60s']);
  assert.equal(reg.code, 0, reg.stdout + reg.stderr);
  const intro = await cli(['api', 'introduce', '-f', v2File, '--wait', '--timeout', '120s', '--reason', 'v2 launch']);
  assert.equal(intro.code, 0, intro.stdout + intro.stderr);
  assert.match(intro.stdout, /v2 Serving serving at \/v2/);

  const v2Dep = await findDeployment(apps, ns, 'orders-v2');
  assert.equal(v2Dep?.status?.availableReplicas, 2);
  assert.equal(v2Dep?.spec?.template.spec?.containers[0]?.image, 'registry.local/orders:2.0');
  const withV2 = await readRoute();
  assert.equal(JSON.stringify(ruleFor(withV2, '/v1')), v1Rule, 'v1 rule byte-identical after introducing v2');
  assert.equal(JSON.stringify(withV2.spec.rules.find((r) => r.name === 'admin')), handRule);
  const v2Rule = JSON.stringify(ruleFor(withV2, '/v2'));
  assert.match(v2Rule, /"name":"orders-v2"/);

  const again = await cli(['api', 'introduce', '-f', v2File]);
  assert.equal(again.code, 1, 'a validator refusal exits 1');
  assert.match(again.stderr, /version v2 of .*\/orders is already Serving/);

  // Retire v1 with a short sunset: long enough that the early approval below lands before it on a loaded machine (8 s did not).
  const retire = await cli(['api', 'retire', 'orders', 'v1', '-n', ns, '--sunset', '20s', '--as', 'carol', '--reason', 'v2 is GA']);
  assert.equal(retire.code, 0, retire.stdout + retire.stderr);
  const deprecated = await until((s) => s.versions.find((v) => v.version === 'v1')?.retirement?.headers === 'set', 'headers set');
  const headers = deprecated.versions.find((v) => v.version === 'v1')?.retirement?.headerValues ?? {};
  assert.deepEqual(ruleFor(await readRoute(), '/v1')?.filters?.[0]?.responseHeaderModifier?.set, Object.entries(headers).map(([name, value]) => ({ name, value })));
  assert.match(headers.Deprecation ?? '', /^@\d+$/);
  assert.match(headers.Sunset ?? '', /GMT$/);
  assert.equal(headers.Link, '<https://docs.example.com/orders/v1-sunset>; rel="deprecation"; type="text/html"');

  const early = await cli(['api', 'approve-retirement', 'orders', 'v1', '-n', ns, '--as', 'alice']);
  assert.equal(early.code, 1);
  assert.match(early.stderr, /approval opens at the sunset/);

  // The worker dies during the deprecation window; a new one picks up the durable timer.
  await killWorker(worker, 'SIGKILL');
  worker = await startWorker(env);
  await until((s) => phase(s, 'v1') === 'AwaitingRetirementApproval', 'sunset passed', 60_000);
  assert.ok(ruleFor(await readRoute(), '/v1'), 'the route stays until approved');

  const self = await cli(['api', 'approve-retirement', 'orders', 'v1', '-n', ns, '--as', 'carol']);
  assert.equal(self.code, 1);
  assert.match(self.stderr, /carol may not approve|carol requested this retirement/);
  // The Temporal CLI's way: a signal from someone who may not approve is ignored and audited.
  await run(process.env.TEMPORAL_CLI as string, ['workflow', 'signal', '-w', id, '--name', 'approveRetirement', '--input', '{"version":"v1","by":"mallory"}', '--address', temporalAddress]);
  const audited = await until((s) => s.audit.some((a) => a.by === 'mallory'), 'ignored signal audited');
  assert.equal(audited.audit.find((a) => a.by === 'mallory')?.accepted, false);
  assert.equal(phase(audited, 'v1'), 'AwaitingRetirementApproval');

  const approve = await cli(['api', 'approve-retirement', 'orders', 'v1', '-n', ns, '--as', 'alice', '--reason', 'traffic on /v1 is zero']);
  assert.equal(approve.code, 0, approve.stdout + approve.stderr);
  const retired = await until((s) => phase(s, 'v1') === 'Retired', 'v1 retired');
  assert.equal(phase(retired, 'v2'), 'Serving');

  const end = await readRoute();
  assert.equal(ruleFor(end, '/v1'), undefined, '/v1 route gone');
  assert.equal(JSON.stringify(ruleFor(end, '/v2')), v2Rule, 'v2 rule untouched');
  assert.equal(JSON.stringify(end.spec.rules.find((r) => r.name === 'admin')), handRule, 'hand rule untouched');
  assert.equal((await findDeployment(apps, ns, 'orders-v1'))?.spec?.replicas, 0, 'v1 scaled to 0');
  const v2After = await findDeployment(apps, ns, 'orders-v2');
  assert.equal(v2After?.metadata?.generation, v2Dep?.metadata?.generation, 'v2 Deployment spec untouched');
  assert.equal(v2After?.spec?.replicas, 2);
  assert.ok(await core.readNamespacedService({ name: 'orders-v1', namespace: ns }), 'v1 Service kept');

  const status = await cli(['api', 'status', 'orders', '-n', ns, '-o', 'json']);
  assert.equal(status.code, 0);
  const s = JSON.parse(status.stdout) as ApiStatus;
  assert.deepEqual(s.versions.map((v) => [v.version, v.phase]), [['v1', 'Retired'], ['v2', 'Serving']]);
  assert.deepEqual(
    s.audit.map((a) => `${a.by} ${a.action}${a.accepted ? '' : ' (ignored)'}`),
    ['ci-bot register', 'glidepath serving', 'ci-bot introduce', 'glidepath serving', 'carol retire', 'glidepath deprecation-headers', 'glidepath sunset', 'mallory approve-retirement (ignored)', 'alice approve-retirement', 'glidepath retired'],
  );
  const text = await cli(['api', 'status', 'orders', '-n', ns]);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /v1\s+Retired/);
  assert.match(text.stdout, /v2\s+Serving/);
  const missing = await cli(['api', 'status', 'nope', '-n', ns]);
  assert.equal(missing.code, 2, missing.stderr);

  // v2 is now the last serving version: it cannot be retired.
  const last = await cli(['api', 'retire', 'orders', 'v2', '-n', ns, '--sunset', '1d']);
  assert.equal(last.code, 1);
  assert.match(last.stderr, /it is the last serving version/);
});

test('abort-retirement through the CLI: headers removed byte for byte, the version serves on', async () => {
  const v3File = path.join(dir, 'v3.yaml');
  await writeFile(
    v3File,
    `apiVersion: glidepath.dev/v1alpha1
kind: ApiVersion
metadata: { name: orders-v3, namespace: ${ns} }
spec: { api: orders, version: v3, image: registry.local/orders:3.0, templateFrom: { deployment: orders-v2 }, route: { pathPrefix: /v3, httpRoute: { name: orders } } }
`,
  );
  const intro = await cli(['api', 'introduce', '-f', v3File, '--wait', '--timeout', '120s']);
  assert.equal(intro.code, 0, intro.stdout + intro.stderr);
  const v2Rule = JSON.stringify(ruleFor(await readRoute(), '/v2'));
  const bad = await cli(['api', 'retire', 'orders', 'v2', '-n', ns, '--sunset', 'someday']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--sunset: "someday" is neither an RFC 3339 date-time/);
  assert.equal((await cli(['api', 'retire', 'orders', 'v2', '-n', ns, '--sunset', '2099-01-01', '--as', 'carol'])).code, 0);
  await until((s) => s.versions.find((v) => v.version === 'v2')?.retirement?.headers === 'set', 'v2 headers set');
  assert.notEqual(JSON.stringify(ruleFor(await readRoute(), '/v2')), v2Rule);
  const abort = await cli(['api', 'abort-retirement', 'orders', 'v2', '-n', ns, '--as', 'dave', '--reason', 'clients still on v2']);
  assert.equal(abort.code, 0, abort.stdout + abort.stderr);
  await until((s) => phase(s, 'v2') === 'Serving', 'v2 serving again');
  assert.equal(JSON.stringify(ruleFor(await readRoute(), '/v2')), v2Rule, 'the v2 rule as it was');
  const again = await cli(['api', 'abort-retirement', 'orders', 'v2', '-n', ns]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /it is Serving/);
});
