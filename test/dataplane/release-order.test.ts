/**
 * Whole releases on requests: the release workflow itself (the Temporal dev server, an in-process worker
 * with the real activities: the Kubernetes workload and the Gateway API and NGINX routers) drives the local
 * control plane while the client sends requests through Traefik to the data plane's pods. A deleted pod
 * stops answering at once (no preStop drain), so a pod removed while the proxy still sends it requests
 * shows as failed requests: what is proven is the order of the release's operations (traffic moved off
 * pods, the proxy given the scale-down delay to converge, only then the pods removed), not a grace period.
 * Gateway API and NGINX: a promotion (setWeight 10, 25, 50 with pauses, promotion, the canary's removal);
 * Gateway API: an abort at 50 % and a rollback at 50 % (an approval timing out) — each with zero 5xx and
 * zero connection errors. Scale-down delays of 3 s stand in for Argo's 30 s.
 * Needs root, KUBECONFIG (scripts/kube.sh up --crds), TRAEFIK_BIN and TEMPORAL_ADDRESS (scripts/dev-server.sh).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createFreezeActivities } from '../../activities/freeze.ts';
import { createIdentityActivities } from '../../activities/identity.ts';
import { releaseWorkflowId, type CanaryStep, type ReleasePlan } from '../../model/types.ts';
import { registerSearchAttributes } from '../../workers/search-attributes.ts';
import { abortUpdate, statusQuery, type ReleaseStatus } from '../../workflows/messages.ts';
import { createGatewayApiRouter } from '../../activities/traffic/gateway-api.ts';
import { createNginxRouter } from '../../activities/traffic/nginx.ts';
import { NEW_IMAGE, routerActivities } from '../activities/kubernetes/cluster.ts';
import { lastServedBy, totals, type LoadResult } from '../../dataplane/load.ts';
import { cachedWorkflowBundle } from '../support/workflow-bundle.ts';
import { CANARY_VERSION, dataPlaneSkip, describe as show, STABLE_VERSION, startRig, until, type Rig } from './fixture.ts';
import { routerRelease, type RouterName, type RouterRelease } from './routers.ts';

const temporalAddress = process.env.TEMPORAL_ADDRESS;
const skip = dataPlaneSkip() ?? (temporalAddress ? undefined : 'TEMPORAL_ADDRESS is not set (the dev server: scripts/dev-server.sh start)');

/** The scale-down delays of the releases: long enough for Traefik to drop endpoints on a busy machine, short for the suite. */
const DELAY_SECONDS = 3;
const TASK_QUEUE = `dataplane-release-order-${Math.random().toString(36).slice(2, 7)}`;

/** A phase or message change of the release, when the test saw it. */
interface Mark {
  at: number;
  phase: string;
  message: string;
}

describe('release order on requests: promotion, abort and rollback fail no request when deleted pods stop answering at once', { skip }, () => {
  let rig: Rig;
  let connection: Connection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') }); // a release that ends aborted or rolled back fails its workflow: no warning for each
    rig = await startRig('dp-ro', { drainMs: 0 });
    connection = await Connection.connect({ address: temporalAddress as string });
    await registerSearchAttributes(connection, 'default');
    client = new Client({ connection });
    const kc = rig.cluster.kc;
    const routerActs = routerActivities(kc, { plugins: createGatewayApiRouter(kc), nginx: createNginxRouter(kc) });
    worker = await Worker.create({
      connection: await NativeConnection.connect({ address: temporalAddress as string }),
      taskQueue: TASK_QUEUE,
      workflowBundle: await cachedWorkflowBundle(),
      activities: { ...routerActs, ...createIdentityActivities(undefined), ...createFreezeActivities(undefined) },
    });
    running = worker.run();
  });
  after(async () => {
    if (worker && worker.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    await connection?.close();
    await rig?.close();
  });

  function planOf(rel: RouterRelease, steps: CanaryStep[]): ReleasePlan {
    return {
      name: 'web',
      namespace: rel.ns,
      workload: { kind: 'Deployment', name: 'web' },
      image: NEW_IMAGE,
      progressDeadlineSeconds: 120,
      retryWindowSeconds: 1,
      policy: {},
      strategy: {
        type: 'canary',
        steps,
        stableService: 'web-stable',
        canaryService: 'web-canary',
        ...(rel.t.trafficRouting ? { trafficRouting: rel.t.trafficRouting } : {}),
        scaleDownDelaySeconds: DELAY_SECONDS,
        abortScaleDownDelaySeconds: DELAY_SECONDS,
      },
    };
  }

  /**
   * Runs the release of `steps` with requests flowing, `drive` acting on it meanwhile, until it reaches
   * `outcome`; the load goes on 2 s past the end (the last removed pods). Asserts that no request failed,
   * naming each failed request's phase and the pod Traefik sent it to.
   */
  async function releaseUnderLoad(router: RouterName, steps: CanaryStep[], outcome: string, last: string, drive?: (id: string) => Promise<void>): Promise<LoadResult> {
    const rel = await routerRelease(rig, router);
    const plan = planOf(rel, steps);
    const id = releaseWorkflowId(plan);
    const log0 = rig.traefik.failedRequests().length;
    const t0 = Date.now();
    const marks: Mark[] = [];
    const load = rig.startLoad(rel.ns, { requests: 1_000_000, concurrency: 4, deadlineMs: Date.now() + 150_000 });
    let status: ReleaseStatus | undefined;
    try {
      await until(() => (load.result.byVersion[STABLE_VERSION] ?? 0) > 50, 'stable answering before the release', 10_000);
      const handle = await client.workflow.start('release', { taskQueue: TASK_QUEUE, workflowId: id, args: [{ plan, initiator: 'ci-bot' }] });
      const watching = (async () => {
        const end = Date.now() + 140_000;
        while (Date.now() < end) {
          status = await handle.query(statusQuery).catch(() => status);
          const m = marks.at(-1);
          if (status && (m?.phase !== status.phase || m.message !== status.message)) marks.push({ at: Date.now(), phase: status.phase, message: status.message });
          if (status?.phase === outcome || status?.phase === 'Failed') return;
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      if (drive) await drive(id);
      await watching;
      assert.equal(status?.phase, outcome, `release ended ${status?.phase}: ${status?.message}`);
      await until(() => lastServedBy(load.result, last, 200), `${last} alone answering after the release`, 30_000);
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      await load.stop();
    }
    const r = load.result;
    const failed = totals(r).serverErrors + totals(r).connectionErrors + Object.values(r.otherStatus).reduce((a, b) => a + b, 0);
    if (failed > 0) {
      const phaseAt = (at: number): string => {
        const m = [...marks].reverse().find((x) => x.at <= at);
        return m ? `${m.phase}: ${m.message}` : 'before the release';
      };
      const bad = r.samples.filter((x) => 'error' in x.outcome || x.outcome.status >= 300);
      const byPhase = new Map<string, number>();
      for (const b of bad) byPhase.set(phaseAt(b.start), (byPhase.get(phaseAt(b.start)) ?? 0) + 1);
      const lines = rig.traefik.failedRequests().slice(log0).map((l) => JSON.parse(l) as { ServiceAddr?: string; DownstreamStatus?: number; StartUTC?: string });
      const history = rig.dp.history();
      const podOf = (addr: string | undefined, at: number): string => {
        const ip = (addr ?? '').split(':')[0];
        const e = [...history].reverse().find((x) => x.ip === ip && x.what === 'serves' && x.at <= at);
        return e ? `${e.pod}@${e.version}` : (addr ?? '?');
      };
      const pods = new Map<string, number>();
      for (const l of lines) {
        const at = l.StartUTC ? Date.parse(l.StartUTC) : Date.now();
        const key = podOf(l.ServiceAddr, at);
        pods.set(key, (pods.get(key) ?? 0) + 1);
      }
      const timeline = marks.map((m) => `+${m.at - t0} ms ${m.phase}: ${m.message}`).join('\n  ');
      assert.fail(
        `${router}: ${failed} of ${r.sent} requests failed (${show(r)})\n by phase: ${JSON.stringify([...byPhase])}\n by pod (Traefik's log): ${JSON.stringify([...pods])}\n first: ${bad
          .slice(0, 10)
          .map((x) => `+${x.start - t0} ms ${JSON.stringify(x.outcome)}`)
          .join('; ')}\n timeline:\n  ${timeline}`,
      );
    }
    assert.ok(totals(r).ok > 500, `requests flowed through the release: ${show(r)}`);
    console.log(`${router} ${outcome}: ${show(r)}`);
    return r;
  }

  const weights: CanaryStep[] = [10, 25, 50].flatMap((weight): CanaryStep[] => [
    { kind: 'setWeight', weight },
    { kind: 'pause', durationMs: 500 },
  ]);

  for (const router of ['gatewayAPI', 'nginx'] as const) {
    test(`${router}: setWeight 10, 25, 50 and promotion`, async () => {
      const r = await releaseUnderLoad(router, weights, 'Promoted', CANARY_VERSION);
      assert.ok((r.byVersion[CANARY_VERSION] ?? 0) > 0 && (r.byVersion[STABLE_VERSION] ?? 0) > 0, `both versions answered: ${show(r)}`);
    });
  }

  // Abort and rollback put stable back by the same path for every router: the Gateway API's proves it.
  for (const router of ['gatewayAPI'] as const) {
    test(`${router}: abort at 50 %`, async () => {
      await releaseUnderLoad(router, [{ kind: 'setWeight', weight: 50 }, { kind: 'pause' }], 'Aborted', STABLE_VERSION, async (id) => {
        const handle = client.workflow.getHandle(id);
        const end = Date.now() + 60_000;
        while ((await handle.query(statusQuery)).phase !== 'Paused') {
          if (Date.now() > end) throw new Error('the release never paused at 50 %');
          await new Promise((r) => setTimeout(r, 100));
        }
        await new Promise((r) => setTimeout(r, 500));
        await handle.executeUpdate(abortUpdate, { args: [{ by: 'oncall', reason: 'test' }] });
      });
    });

    test(`${router}: rollback at 50 % (an approval times out)`, async () => {
      await releaseUnderLoad(router, [{ kind: 'setWeight', weight: 50 }, { kind: 'approval', approvers: ['alice'], minApprovals: 1, timeoutMs: 1000, onTimeout: 'rollback' }], 'RolledBack', STABLE_VERSION);
    });
  }
});
