/**
 * The drift watch's activities (workflows/drift.ts): the reference read once from the cluster, the
 * read-only comparison (which also sets the metric `glidepath_drift{namespace,workload,field}`, 1 while
 * a field drifts, 0 when it is as the last promoted release left it), and the revert: the stable's
 * image and replicas by server-side apply with Glidepath's field manager (forced: the hand edit's
 * manager loses the field), the router back to weight 0 and the canary removed through the normal
 * operations, a Service's selector by a merge patch guarded by its resourceVersion; each read back.
 */
import { PatchStrategy, type KubeConfig, type V1Deployment, type V1Service } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Gauge, type Registry } from 'prom-client';
import { DEFAULT_DRIFT_INTERVAL, DRIFT_WORKFLOW, WORKLOAD_GONE, compareDrift, comparedFields, driftProblems, driftWorkflowId, sameLabels, type DriftApiRoute, type DriftBaseline, type DriftDesired, type DriftFinding, type DriftLive, type DriftSettings } from '../model/drift.ts';
import { routerKey } from '../model/traffic-routing.ts';
import { driftPromotedSignal, type DriftCheckRequest, type DriftFollowResult, type DriftReleaseState, type DriftRevertRequest, type DriftWatchInput } from '../workflows/drift/messages.ts';
import { statusQuery, type ReleaseResult } from '../workflows/messages.ts';
import { SETTLED_PHASES, type Phase } from '../model/types.ts';
import type { ReleaseTarget, TrafficRouter, WorkloadOps } from './contract.ts';
import { createApiRouteDrift, versionRouteFromWorkflow, type VersionRouteLookup } from './drift-routes.ts';
import { ErrorType } from './errors.ts';
import { createKubeClients, type KubeClients } from './kubernetes/client.ts';
import { MERGE_PATCH } from './kubernetes/deployments.ts';
import { isNotFound } from './kubernetes/errors.ts';
import { FIELD_MANAGER, roleName, targetContainer } from './kubernetes/objects.ts';

export interface DriftDeps {
  kubeConfig: KubeConfig;
  /** The canary's removal (the same operation a release uses). */
  workload: Pick<WorkloadOps, 'removeCanary'>;
  routers?: Record<string, TrafficRouter> | undefined;
  /** Where `glidepath_drift` is registered (the worker's metrics registry). */
  registry?: Registry | undefined;
  /** Where the workload's releases are asked about (the worker's client). */
  client?: Client | undefined;
  requestTimeoutMs?: number;
  /** Where an API version's route is (default: the API's workflow, through `client`). */
  versionRoute?: VersionRouteLookup | undefined;
  /** Where a watch started by a promotion runs (the worker's task queue). */
  taskQueue?: string | undefined;
  /** Whether a promotion starts (or gives a new reference to) the workload's watch, with these settings for a new one; `off`: never. Default: report every 1m. */
  onPromotion?: DriftSettings | 'off' | undefined;
}

/**
 * The worker's setting for watches started by promotions: `GLIDEPATH_DRIFT_ON_PROMOTION` = `report`
 * (default), `revert` or `off`; `GLIDEPATH_DRIFT_INTERVAL` (default 1m, at least 10s). A bad value stops the worker at its start, named.
 */
export function driftOnPromotionFromEnv(env: NodeJS.ProcessEnv): DriftSettings | 'off' {
  const policy = env.GLIDEPATH_DRIFT_ON_PROMOTION?.trim() || 'report';
  const interval = env.GLIDEPATH_DRIFT_INTERVAL?.trim() || DEFAULT_DRIFT_INTERVAL;
  if (policy === 'off') return 'off';
  const settings = { policy, interval } as DriftSettings;
  const problems = driftProblems({ ...settings, baseline: { releaseId: 'x', image: 'x', target: { workload: { kind: 'Deployment' } } as DriftBaseline['target'] } });
  if (problems.length > 0) {
    const named = problems.map((p) => p.replace(/^policy: must be/, `GLIDEPATH_DRIFT_ON_PROMOTION: must be "off",`).replace(/^interval:/, 'GLIDEPATH_DRIFT_INTERVAL:'));
    throw new Error(named.join('; '));
  }
  return settings;
}

export type DriftActivities = ReturnType<typeof createDriftActivities>;

const serviceNames = (t: ReleaseTarget): string[] => [...new Set([t.stableService, t.canaryService, t.activeService, t.previewService].filter((n): n is string => !!n))];

export function createDriftActivities(deps: DriftDeps) {
  const k: KubeClients = createKubeClients(deps.kubeConfig, { requestTimeoutMs: deps.requestTimeoutMs ?? 15_000 });
  const gauge = new Gauge({
    name: 'glidepath_drift',
    help: 'Whether a field of a workload differs from what its last promoted release left (1) or not (0), by namespace, workload and field; set by each drift check',
    labelNames: ['namespace', 'workload', 'field'],
    registers: deps.registry ? [deps.registry] : [],
  });

  const find = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const findDeployment = (namespace: string, name: string): Promise<V1Deployment | undefined> =>
    find(() => k.call({ verb: 'get', resource: 'deployments.apps', namespace, name }, () => k.apps.readNamespacedDeployment({ name, namespace })));
  const findService = (namespace: string, name: string): Promise<V1Service | undefined> =>
    find(() => k.call({ verb: 'get', resource: 'services', namespace, name }, () => k.core.readNamespacedService({ name, namespace })));
  const hpaOwns = async (t: ReleaseTarget): Promise<boolean> => {
    const list = await k.call({ verb: 'list', resource: 'horizontalpodautoscalers.autoscaling', namespace: t.namespace }, () => k.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace: t.namespace }));
    return list.items.some((h) => h.spec?.scaleTargetRef?.kind === t.workload.kind && h.spec.scaleTargetRef.name === t.workload.name);
  };
  const routerOf = (t: ReleaseTarget): TrafficRouter | undefined => {
    const key = t.trafficRouting ? routerKey(t.trafficRouting) : undefined;
    return key ? deps.routers?.[key] : undefined;
  };
  const apiRoutes = createApiRouteDrift(k);
  const versionRoute = deps.versionRoute ?? (deps.client ? versionRouteFromWorkflow(deps.client) : undefined);
  /** The reference's API route while the API's workflow still has the version routed (a retirement takes the route away: not drift, never put back). */
  const stillRouted = async (b: DriftBaseline, d: DriftDesired): Promise<DriftApiRoute | undefined> => {
    const r = d.apiRoute;
    if (!r || !versionRoute) return undefined;
    return (await versionRoute(b.target.namespace, r.api, r.version)) ? r : undefined;
  };
  const where = (t: ReleaseTarget): string => `Deployment ${t.namespace}/${t.workload.name}`;
  /** The stable Deployment does not exist (the apiserver answered NotFound): the watch ends rather than report it at every check. */
  const gone = (b: DriftBaseline): ApplicationFailure =>
    ApplicationFailure.nonRetryable(`${where(b.target)} not found (the workload of ${b.releaseId} was deleted): the drift watch of it ends`, WORKLOAD_GONE);
  /** Removes every `glidepath_drift` series of the workload (a deleted workload alerts no more). */
  const forget = async (t: ReleaseTarget): Promise<void> => {
    const { values } = await gauge.get();
    for (const v of values) if (v.labels.namespace === t.namespace && v.labels.workload === t.workload.name) gauge.remove(v.labels);
  };

  /** The live objects; the stable Deployment's absence is WorkloadGone. */
  const readLive = async (b: DriftBaseline, d: DriftDesired): Promise<DriftLive> => {
    const t = b.target;
    const [stable, hpa, role, services] = await Promise.all([
      findDeployment(t.namespace, t.workload.name),
      hpaOwns(t),
      d.role ? findDeployment(t.namespace, roleName(t.workload.name, d.role)) : Promise.resolve(undefined),
      Promise.all(d.services.map(async (s) => ({ name: s.name, selector: (await findService(t.namespace, s.name))?.spec?.selector ?? null }))),
    ]);
    if (!stable) throw gone(b);
    const router = d.router !== undefined ? routerOf(t) : undefined;
    const routerAtRest = router ? await router.verifyWeight(t, 0) : undefined;
    const container = stable?.spec?.template?.spec?.containers?.find((c) => c.name === d.container);
    return {
      ...(container?.image !== undefined ? { image: container.image } : {}),
      replicas: stable.spec?.replicas ?? 1,
      hpa,
      roleExists: role !== undefined && !role.metadata?.deletionTimestamp,
      services: services.map((s) => ({ name: s.name, selector: s.selector === null ? null : { ...s.selector } })),
      ...(routerAtRest !== undefined ? { routerAtRest } : {}),
    };
  };

  /** The stable's image and replicas by server-side apply (forced), read back. */
  const applyStable = async (b: DriftBaseline, d: DriftDesired, fields: Set<string>): Promise<void> => {
    const t = b.target;
    const spec: Record<string, unknown> = {};
    if (fields.has('replicas') && d.replicas !== undefined) spec.replicas = d.replicas;
    if (fields.has('image')) spec.template = { spec: { containers: [{ name: d.container, image: d.image }] } };
    const body = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: t.workload.name, namespace: t.namespace }, spec };
    await k.call({ verb: 'apply', resource: 'deployments.apps', namespace: t.namespace, name: t.workload.name }, () => k.objects.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
    const got = await findDeployment(t.namespace, t.workload.name);
    const image = got?.spec?.template?.spec?.containers?.find((c) => c.name === d.container)?.image;
    const problems: string[] = [];
    if (fields.has('image') && image !== d.image) problems.push(`container ${d.container} image ${image}, expected ${d.image}`);
    if (fields.has('replicas') && d.replicas !== undefined && got?.spec?.replicas !== d.replicas) problems.push(`replicas ${got?.spec?.replicas}, expected ${d.replicas}`);
    if (problems.length > 0) throw ApplicationFailure.nonRetryable(`${where(t)} reads back differently after the revert: ${problems.join('; ')}`, ErrorType.VerificationFailed);
  };

  /** A Service's selector back to the reference: a merge patch guarded by resourceVersion, read back. */
  const putSelector = async (t: ReleaseTarget, name: string, selector: Record<string, string>): Promise<void> => {
    const svc = await findService(t.namespace, name);
    if (!svc) throw ApplicationFailure.nonRetryable(`Service ${t.namespace}/${name} is gone; a drift revert does not recreate it`, ErrorType.NotFound);
    if (sameLabels(svc.spec?.selector ?? null, selector)) return;
    const next: Record<string, string | null> = { ...selector };
    for (const key of Object.keys(svc.spec?.selector ?? {})) if (!(key in selector)) next[key] = null;
    await k.call({ verb: 'patch', resource: 'services', namespace: t.namespace, name }, () =>
      k.core.patchNamespacedService({ name, namespace: t.namespace, fieldManager: FIELD_MANAGER, body: { metadata: { resourceVersion: svc.metadata?.resourceVersion }, spec: { selector: next } } }, MERGE_PATCH),
    );
    const back = await findService(t.namespace, name);
    if (!sameLabels(back?.spec?.selector ?? null, selector)) throw ApplicationFailure.nonRetryable(`Service ${t.namespace}/${name} reads back selector ${JSON.stringify(back?.spec?.selector ?? null)} after setting ${JSON.stringify(selector)}`, ErrorType.VerificationFailed);
  };

  return {
    /**
     * Called by a release that promoted: starts the workload's watch with the worker's settings, or
     * gives the running one this promotion as its new reference (signal-with-start on the fixed ID
     * `drift_<namespace>_<workload>`: one watch per workload; a running watch keeps its policy and
     * interval). Skipped, with the reason, when the worker's setting is `off`, the workload is not a
     * Deployment, or the release is one cluster's of a group (watch IDs are per workload, not per cluster).
     */
    async driftFollowPromotion(b: DriftBaseline): Promise<DriftFollowResult> {
      const settings = deps.onPromotion ?? { policy: 'report', interval: DEFAULT_DRIFT_INTERVAL };
      if (settings === 'off') return { skipped: 'the worker starts no drift watch on promotion (GLIDEPATH_DRIFT_ON_PROMOTION=off)' };
      const t = b.target;
      if (t.workload.kind !== 'Deployment') return { skipped: `drift is watched on Deployments, not ${t.workload.kind}` };
      if (b.releaseId.includes('@')) return { skipped: `${b.releaseId} is one cluster's release: drift watches are per workload, not per cluster` };
      if (!deps.client || !deps.taskQueue) throw ApplicationFailure.nonRetryable('this worker has no Temporal client or task queue for the drift activities', ErrorType.InvalidSpec);
      const input: DriftWatchInput = { baseline: b, ...settings };
      const problems = driftProblems(input);
      if (problems.length > 0) throw ApplicationFailure.nonRetryable(`drift watch of ${t.namespace}/${t.workload.name}: ${problems.join('; ')}`, ErrorType.InvalidSpec);
      const watchId = driftWorkflowId({ namespace: t.namespace, workload: t.workload.name });
      await deps.client.workflow.signalWithStart(DRIFT_WORKFLOW, {
        taskQueue: deps.taskQueue,
        workflowId: watchId,
        args: [input],
        signal: driftPromotedSignal,
        signalArgs: [b],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE', // a watch that ended (its workload was deleted) is started anew by a promotion of a re-created one
        staticSummary: `drift watch of ${t.namespace}/${t.workload.name}`,
      });
      return { watchId, ...settings };
    },

    /** Where the release `releaseId` (the workload's release workflow, its latest run) stands. Read-only. */
    async driftReleaseState(releaseId: string): Promise<DriftReleaseState> {
      if (!deps.client) throw ApplicationFailure.nonRetryable('this worker has no Temporal client for the drift activities', ErrorType.InvalidSpec);
      const handle = deps.client.workflow.getHandle(releaseId);
      let status: string;
      try {
        status = (await handle.describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { state: 'none' };
        throw err;
      }
      if (status === 'COMPLETED') {
        const result = (await handle.result()) as ReleaseResult;
        return { state: 'settled', phase: result.outcome, ...(result.outcome === 'Promoted' ? { promotedImage: result.image } : {}) };
      }
      if (status !== 'RUNNING') return { state: 'settled', phase: status };
      const s = await handle.query(statusQuery);
      if (!SETTLED_PHASES.includes(s.phase as Phase)) return { state: 'in-flight', phase: s.phase };
      return { state: 'settled', phase: s.phase, ...(s.phase === 'Promoted' ? { promotedImage: s.canaryImage } : {}) };
    },

    /** The reference of a baseline: the release's image, and replicas (where no HPA owns them), the role, the router and the Services' selectors as they are at rest now. */
    async driftDesired(b: DriftBaseline): Promise<DriftDesired> {
      const t = b.target;
      const stable = await findDeployment(t.namespace, t.workload.name);
      if (!stable) throw gone(b);
      const container = targetContainer(stable, { ...t, image: b.image });
      const hpa = await hpaOwns(t);
      const services: DriftDesired['services'] = [];
      for (const name of serviceNames(t)) {
        const svc = await findService(t.namespace, name);
        if (svc) services.push({ name, selector: { ...(svc.spec?.selector ?? {}) } });
      }
      const role = t.strategy === 'canary' ? 'canary' : t.strategy === 'blueGreen' ? 'preview' : undefined;
      const router = routerOf(t) ? routerKey(t.trafficRouting ?? {}) : undefined;
      const apiRoute = await apiRoutes.reference(stable, versionRoute);
      return { container: container.name, image: b.image, ...(hpa ? {} : { replicas: stable.spec?.replicas ?? 1 }), ...(role ? { role } : {}), services, ...(router ? { router } : {}), ...(apiRoute ? { apiRoute } : {}) };
    },

    /**
     * Read-only: what differs from the reference now. Sets `glidepath_drift` for every field compared;
     * a deleted stable Deployment removes the workload's series and fails as WorkloadGone.
     */
    async driftCheck(req: DriftCheckRequest): Promise<DriftFinding[]> {
      let live: DriftLive;
      try {
        live = await readLive(req.baseline, req.desired);
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === WORKLOAD_GONE) await forget(req.baseline.target);
        throw err;
      }
      const findings = compareDrift(req.desired, live);
      const routed = await stillRouted(req.baseline, req.desired);
      const route = routed ? await apiRoutes.check(routed) : undefined;
      if (route) findings.push(route);
      const labels = { namespace: req.baseline.target.namespace, workload: req.baseline.target.workload.name };
      const compared = comparedFields(req.desired, live).filter((f) => routed || f !== 'route');
      for (const field of compared) gauge.set({ ...labels, field }, findings.some((f) => f.field === field) ? 1 : 0);
      return findings;
    },

    /**
     * Puts the drifted fields back: the stable's image and replicas, then all traffic to stable, then
     * the canary removed (with the Services it pointed), then any Service selector still drifted. A preview at rest is not removed (finalizing or
     * aborting its release decides which side stays): that part fails, named, after the others ran.
     */
    async driftRevert(req: DriftRevertRequest): Promise<void> {
      const t = { ...req.baseline.target, image: req.baseline.image };
      const fields = new Set(req.findings.map((f) => f.field));
      if (fields.has('image') || fields.has('replicas')) await applyStable(req.baseline, req.desired, fields);
      const router = routerOf(t);
      if (fields.has('router') && router) {
        await router.setWeight(t, 0);
        await router.removeManagedRoutes(t);
        if ((await router.verifyWeight(t, 0)) === false) throw new Error(`${router.type} does not carry weight 0 yet`); // retried
      }
      if (fields.has('canary')) await deps.workload.removeCanary(t); // gives the Services it pointed their own selectors back too
      for (const s of req.desired.services) if (fields.has(`service/${s.name}`)) await putSelector(t, s.name, s.selector);
      const routed = fields.has('route') ? await stillRouted(req.baseline, req.desired) : undefined;
      if (routed) await apiRoutes.revert(routed);
      if (fields.has('preview')) throw ApplicationFailure.nonRetryable(`Deployment ${t.namespace}/${roleName(t.workload.name, 'preview')} is present at rest: a drift revert does not remove a preview (finalize or abort its release)`, ErrorType.PreflightFailed);
    },
  };
}
