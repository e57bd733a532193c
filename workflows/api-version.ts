/**
 * One long-lived workflow per API (`api-<namespace>-<api>`) holding every version's state: introduce
 * a version (its own Deployment, Service and path route, existing routes untouched), retire one
 * (Deprecation and Sunset headers where the router can set them, a durable timer until the sunset,
 * an approval gate, then the route goes and the Deployment scales to 0). Updates carry validators
 * (a rejected request never reaches history); signals are for the Temporal CLI and UI. Approving or
 * aborting a retirement is judged on the identity the identity server proved, under the worker's
 * identity policy, as release actions are (model/identity.ts). Continues as new when history grows,
 * carrying the state. Described in docs/api-versioning.md.
 */
import * as wf from '@temporalio/workflow';
import type { createIdentityActivities } from '../activities/identity.ts';
import type { VersioningActivities } from '../activities/versioning/index.ts';
import { apiKey, apiVersionPlanProblems, apiWorkflowId, deprecationHeaders } from '../model/api-version-plan.ts';
import { actionIdentity, rememberNonce, signalRefusal, type ActionClaims, type IdentityPolicy, type RememberedNonce } from '../model/identity.ts';
import { formatDuration } from '../model/duration.ts';
import { PHASE_ATTRIBUTE, SERVICE_ATTRIBUTE, type AuditEntry } from './messages.ts';
import { SIGNAL_PROOF } from './release/actions.ts';
import {
  AUDIT_LIMIT,
  abortRetirementSignal,
  abortRetirementUpdate,
  apiStatusQuery,
  approveRetirementSignal,
  approveRetirementUpdate,
  introduceVersionUpdate,
  retireVersionUpdate,
  type ApiStatus,
  type ApiVersionsInput,
  type IntroduceInput,
  type RetireInput,
  type VersionActionInput,
  type VersionPhase,
  type VersionStatus,
} from './api-version-messages.ts';
import * as profiles from './profiles.ts';

/** Runs started with this patch read the worker's identity policy and check proofs on retirement approvals and aborts. */
export const API_IDENTITY = 'glidepath-api-identity';

const identityActivities = wf.proxyLocalActivities<ReturnType<typeof createIdentityActivities>>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

type RetirementAction = 'approve-retirement' | 'abort-retirement';

/** Who an allowed retirement action counts as. */
interface Actor {
  by: string;
  proven: boolean;
  claims?: ActionClaims | undefined;
}

type ActionCheck = { ok: true; actor: Actor } | { ok: false; why: string; auditAs: string };

/** The most pressing phase first: what the GlidepathPhase search attribute shows for the API. */
const PRIORITY: VersionPhase[] = ['AwaitingRetirementApproval', 'Failed', 'Introducing', 'Retiring', 'Deprecated', 'Serving', 'Retired'];

function describeError(err: unknown): string {
  if (err instanceof wf.ActivityFailure) {
    const cause = err.cause;
    return `${err.activityType}: ${cause instanceof wf.ApplicationFailure ? `${cause.type ?? 'Error'}: ${cause.message}` : (cause?.message ?? err.message)}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function isPayload(req: unknown): req is { by: string; reason?: unknown } {
  return req !== null && typeof req === 'object' && typeof (req as { by?: unknown }).by === 'string' && (req as { by: string }).by.trim() !== '';
}

export async function apiVersions(input: ApiVersionsInput): Promise<void> {
  const info = wf.workflowInfo();
  const now = (): string => new Date().toISOString();
  // Checked before any handler exists, so nothing runs under a wrong ID.
  if (info.workflowId !== apiWorkflowId(input)) {
    throw wf.ApplicationFailure.nonRetryable(`workflow ID must be ${apiWorkflowId(input)} (one workflow per API), got ${info.workflowId}`, 'InvalidSpec');
  }
  const status: ApiStatus = input.state ?? {
    workflowId: info.workflowId,
    service: apiKey(input),
    namespace: input.namespace,
    api: input.api,
    phase: 'Empty',
    versions: [],
    audit: [],
    startedAt: now(),
    continuedAsNew: 0,
  };

  // Decided before any handler exists, so that an action delivered with the start meets the gate.
  // undefined: not read yet (actions are refused); null: no policy (claimed identity, as before the patch).
  let policy: IdentityPolicy | null | undefined = wf.patched(API_IDENTITY) ? undefined : null;
  let usedNonces: RememberedNonce[] = input.usedNonces ?? [];

  const audit = (by: string, action: string, accepted: boolean, reason?: unknown, detail?: string): void => {
    const entry: AuditEntry = { at: now(), by, action, accepted, ...(typeof reason === 'string' && reason ? { reason } : {}), ...(detail ? { detail } : {}) };
    status.audit.push(entry);
    if (status.audit.length > AUDIT_LIMIT) status.audit.splice(0, status.audit.length - AUDIT_LIMIT);
  };

  let lastPhase = '';
  const sync = (): void => {
    const phases = new Set(status.versions.map((v) => v.phase));
    status.phase = PRIORITY.find((p) => phases.has(p)) ?? 'Empty';
    if (status.phase === lastPhase) return;
    lastPhase = status.phase;
    wf.upsertSearchAttributes([{ key: PHASE_ATTRIBUTE, value: status.phase }]);
  };
  const setPhase = (v: VersionStatus, phase: VersionPhase, message: string): void => {
    v.phase = phase;
    v.message = message;
    sync();
  };
  const find = (version: unknown): VersionStatus | undefined => status.versions.find((v) => v.version === version);
  const serving = (): VersionStatus[] => status.versions.filter((v) => v.phase === 'Serving');

  // ---- validators: a rejected update writes nothing to history --------------------------------------

  const rejectIntroduce = (req: IntroduceInput): string | undefined => {
    if (!isPayload(req)) return 'introduceVersion: payload must be {"plan": {...}, "by": "<identity>"}';
    if (req.plan === null || typeof req.plan !== 'object') return 'introduceVersion: plan is missing';
    const problems = apiVersionPlanProblems(req.plan);
    if (problems.length > 0) return `invalid ApiVersion plan: ${problems.join('; ')}`;
    const p = req.plan;
    if (p.namespace !== status.namespace || p.api !== status.api) return `this workflow manages ${status.service}; the plan is for ${apiKey(p)} (workflow ${apiWorkflowId(p)})`;
    const existing = find(p.version);
    if (existing && existing.phase !== 'Failed' && existing.phase !== 'Retired') return `version ${p.version} of ${status.service} is already ${existing.phase}`;
    for (const v of status.versions) {
      if (v.version === p.version || v.phase === 'Retired' || v.phase === 'Failed') continue;
      if (v.plan.route.pathPrefix === p.route.pathPrefix) return `path ${p.route.pathPrefix} is in use by version ${v.version} (${v.phase})`;
      if (v.plan.deployment === p.deployment) return `Deployment ${p.deployment} is version ${v.version}'s`;
    }
    return undefined;
  };

  const rejectRetire = (req: RetireInput): string | undefined => {
    if (!isPayload(req) || typeof req.version !== 'string' || typeof req.sunset !== 'string') return 'retireVersion: payload must be {"version": "v1", "sunset": "<RFC 3339>", "by": "<identity>"}';
    if (req.link !== undefined && (typeof req.link !== 'string' || !/^https?:\/\/\S+$/.test(req.link))) return 'retireVersion: link must be an http(s) URL';
    const v = find(req.version);
    if (!v) return `${status.service} has no version ${req.version} (versions: ${status.versions.map((x) => x.version).join(', ') || 'none'})`;
    if (v.phase !== 'Serving') return `cannot retire ${status.service} ${req.version}: it is ${v.phase}, not Serving`;
    if (!serving().some((x) => x.version !== req.version)) return `cannot retire ${status.service} ${req.version}: it is the last serving version`;
    const sunset = Date.parse(req.sunset);
    if (Number.isNaN(sunset)) return `sunset "${req.sunset}" is not an RFC 3339 date-time`;
    if (sunset <= Date.now()) return `sunset ${req.sunset} is not in the future (now ${now()})`;
    return undefined;
  };

  const rejectApprove = (req: VersionActionInput): string | undefined => {
    if (!isPayload(req) || typeof req.version !== 'string') return 'approveRetirement: payload must be {"version": "v1", "by": "<identity>", "reason": "<text>"}';
    const v = find(req.version);
    if (!v) return `${status.service} has no version ${req.version}`;
    const r = v.retirement;
    if (v.phase !== 'AwaitingRetirementApproval' || !r) return `cannot approve the retirement of ${status.service} ${req.version}: it is ${v.phase}${v.phase === 'Deprecated' && r ? ` (approval opens at the sunset, ${r.sunset})` : ''}`;
    if (r.approvedBy) return `the retirement of ${req.version} is already approved by ${r.approvedBy.by}`;
    if (r.approvers.length > 0 && !r.approvers.includes(req.by)) return `${req.by} may not approve the retirement of ${req.version} (approvers: ${r.approvers.join(', ')})`;
    if (req.by === r.requestedBy) return `${req.by} requested this retirement and cannot approve it (four-eyes rule)`;
    return undefined;
  };

  const rejectAbort = (req: VersionActionInput): string | undefined => {
    if (!isPayload(req) || typeof req.version !== 'string') return 'abortRetirement: payload must be {"version": "v1", "by": "<identity>", "reason": "<text>"}';
    const v = find(req.version);
    if (!v) return `${status.service} has no version ${req.version}`;
    if ((v.phase !== 'Deprecated' && v.phase !== 'AwaitingRetirementApproval') || !v.retirement) return `cannot abort the retirement of ${status.service} ${req.version}: it is ${v.phase}`;
    if (v.retirement.abortedBy) return `the retirement of ${req.version} is already being aborted by ${v.retirement.abortedBy.by}`;
    if (v.retirement.approvedBy && v.phase !== 'AwaitingRetirementApproval') return `the retirement of ${req.version} is approved and under way`;
    return undefined;
  };

  /**
   * Whether `req` may take `action` now, and as whom: under a policy, a proof (or, under `optional`,
   * none) decides who acts, and `reject` judges that identity (approvers, four eyes, phase).
   */
  const checkRetirementAction = (action: RetirementAction, req: VersionActionInput, reject: (req: VersionActionInput) => string | undefined): ActionCheck => {
    if (policy === undefined) return { ok: false, why: `${action}: the API workflow has not read the worker's identity policy yet; try again in a moment`, auditAs: 'unauthenticated' };
    const hasProof = req !== null && typeof req === 'object' && req.proof !== undefined;
    if (policy === null && !hasProof) {
      // No identity policy, no proof: the claimed identity, as before.
      const why = reject(req);
      return why === undefined ? { ok: true, actor: { by: req.by, proven: false } } : { ok: false, why, auditAs: isPayload(req) ? req.by : 'unknown' };
    }
    if (req === null || typeof req !== 'object' || typeof req.version !== 'string') {
      return { ok: false, why: `${action}: payload must be {"version": "v1", "reason": "<text>", "proof": "<assertion>"}`, auditAs: 'unauthenticated' };
    }
    const id = actionIdentity(policy ?? undefined, req, { action, releaseId: status.workflowId, namespace: status.namespace, version: req.version, nowMs: Date.now(), usedNonces });
    if (!id.accepted) return { ok: false, why: id.why, auditAs: id.auditAs };
    const why = reject({ ...req, by: id.by });
    // A refused action's claimed name is not evidence: it is audited under the proven one or as unauthenticated.
    return why === undefined ? { ok: true, actor: { by: id.by, proven: id.proven, claims: id.claims } } : { ok: false, why, auditAs: id.proven ? id.by : 'unauthenticated' };
  };

  /** checkRetirementAction for a signal: no proof is verified (SIGNAL_PROOF); refused under `required`, an unproven claim under `optional`. */
  const checkRetirementSignal = (action: RetirementAction, req: VersionActionInput, reject: (req: VersionActionInput) => string | undefined): ActionCheck => {
    if (!wf.patched(SIGNAL_PROOF)) return checkRetirementAction(action, req, reject);
    if (policy?.mode === 'required') return { ok: false, why: signalRefusal(action), auditAs: 'unauthenticated' };
    if (policy?.mode === 'optional' && req !== null && typeof req === 'object') return checkRetirementAction(action, { ...req, proof: undefined }, reject);
    return checkRetirementAction(action, req, reject);
  };

  /** The audit detail of an allowed retirement action: the version, and whether its identity went unproven under a policy. */
  const actedOn = (version: string, actor: Actor): string => (policy && !actor.proven ? `${version} (unproven identity)` : version);

  // ---- activities (before the handlers: an update delivered with the start runs inside setHandler) ----

  const quick = wf.proxyActivities<VersioningActivities>(profiles.quick);
  const cleanup = wf.proxyActivities<VersioningActivities>(profiles.cleanup);

  /** Activities in flight: the workflow continues as new only when none are. */
  let busy = 0;
  const step = async <T>(fn: () => Promise<T>): Promise<T> => {
    busy++;
    try {
      return await fn();
    } finally {
      busy--;
    }
  };

  /** Runs one version from wherever its phase says it is (so a continued-as-new run resumes it). */
  async function drive(v: VersionStatus): Promise<void> {
    const p = v.plan;
    for (;;) {
      if (status.versions.indexOf(v) < 0) return; // replaced by a new introduction
      const r = v.retirement;
      try {
        switch (v.phase) {
          case 'Introducing': {
            if (p.source === 'existing') {
              await step(() => quick.registerVersion(p));
            } else {
              await step(() => wf.proxyActivities<VersioningActivities>(profiles.rollout(p.progressDeadlineSeconds)).deployVersion(p));
              v.message = `adding the route ${p.route.pathPrefix}`;
              await step(() => quick.addVersionRoute(p));
            }
            v.servingSince = now();
            setPhase(v, 'Serving', `serving at ${p.route.pathPrefix}`);
            audit('glidepath', 'serving', true, undefined, `${v.version} at ${p.route.pathPrefix}`);
            break;
          }
          case 'Serving':
            await wf.condition(() => v.phase !== 'Serving');
            break;
          case 'Deprecated':
          case 'AwaitingRetirementApproval': {
            if (!r) throw new Error(`version ${v.version} is ${v.phase} without a retirement`);
            if (r.abortedBy) {
              v.message = `retirement aborted by ${r.abortedBy.by}: removing the deprecation headers`;
              if (r.headers === 'set') await step(() => cleanup.clearDeprecationHeaders(p, r.headerValues));
              v.retirement = undefined;
              setPhase(v, 'Serving', `serving at ${p.route.pathPrefix} (retirement aborted by ${r.abortedBy.by})`);
              audit('glidepath', 'retirement-aborted', true, undefined, v.version);
              break;
            }
            if (r.headers === 'pending') {
              const got = await step(() => quick.setDeprecationHeaders(p, r.headerValues));
              r.headers = got.supported ? 'set' : 'unsupported';
              if (got.note) r.headersNote = got.note;
              audit('glidepath', 'deprecation-headers', true, undefined, `${v.version}: ${got.supported ? Object.entries(r.headerValues).map(([k, x]) => `${k}: ${x}`).join('; ') : `not set (${got.note ?? 'unsupported'})`}`);
              continue;
            }
            if (v.phase === 'Deprecated') {
              const remaining = Date.parse(r.sunset) - Date.now();
              v.message = `deprecated; sunset ${r.sunset}${r.headers === 'unsupported' ? ' (the router cannot set response headers)' : ''}`;
              if (remaining > 0 && (await wf.condition(() => r.abortedBy !== undefined, remaining))) break;
              if (r.abortedBy) break;
              setPhase(v, 'AwaitingRetirementApproval', `sunset ${r.sunset} passed: awaiting approval${r.approvers.length ? ` from ${r.approvers.join(', ')}` : ''} to remove ${p.route.pathPrefix}`);
              audit('glidepath', 'sunset', true, undefined, `${v.version}: sunset passed after ${formatDuration(Date.parse(r.sunset) - Date.parse(r.deprecatedAt))}`);
              break;
            }
            await wf.condition(() => r.approvedBy !== undefined || r.abortedBy !== undefined);
            if (r.abortedBy) break;
            setPhase(v, 'Retiring', `retirement approved by ${r.approvedBy?.by}: removing ${p.route.pathPrefix}`);
            break;
          }
          case 'Retiring': {
            await step(() => cleanup.removeVersionRoute(p));
            v.message = `route ${p.route.pathPrefix} removed: scaling ${p.deployment} to 0`;
            const scaled = await step(() => cleanup.scaleDownVersion(p));
            v.retiredReplicas = scaled.previousReplicas;
            v.retiredAt = now();
            setPhase(v, 'Retired', `retired: ${p.route.pathPrefix} removed, Deployment ${p.deployment} at 0 replicas (kept with Service ${p.service})`);
            audit('glidepath', 'retired', true, undefined, v.version);
            return;
          }
          case 'Retired':
          case 'Failed':
            return;
        }
      } catch (err) {
        if (wf.isCancellation(err)) throw err;
        const was = v.phase;
        setPhase(v, 'Failed', `${was}: ${describeError(err)}`);
        audit('glidepath', 'failed', true, undefined, `${v.version} (${was}): ${describeError(err)}`);
        return;
      }
    }
  }

  /** One driver per version object (an update delivered with the start may already have started one). */
  const drivers = new Map<VersionStatus, Promise<void>>();
  const startDriver = (v: VersionStatus): void => {
    if (!drivers.has(v)) drivers.set(v, drive(v));
  };

  // ---- handlers (set before the first await) ---------------------------------------------------------

  const introduce = (req: IntroduceInput): void => {
    const p = req.plan;
    const previous = find(p.version);
    const v: VersionStatus = {
      version: p.version,
      phase: 'Introducing',
      message: p.source === 'existing' ? `registering the running ${p.deployment}` : `creating ${p.deployment}`,
      plan: p,
      introducedBy: req.by,
      introducedAt: now(),
    };
    if (previous) status.versions.splice(status.versions.indexOf(previous), 1, v);
    else status.versions.push(v);
    sync();
    audit(req.by, p.source === 'existing' ? 'register' : 'introduce', true, req.reason, `${p.version} at ${p.route.pathPrefix} → Service ${p.service}${p.image ? ` (${p.image})` : ''}`);
    startDriver(v);
  };

  const retire = (req: RetireInput): void => {
    const v = find(req.version) as VersionStatus;
    const deprecatedAt = Date.now();
    const sunset = Date.parse(req.sunset);
    const link = req.link ?? v.plan.deprecationLink;
    v.retirement = {
      requestedBy: req.by,
      requestedAt: now(),
      ...(typeof req.reason === 'string' && req.reason ? { reason: req.reason } : {}),
      deprecatedAt: new Date(deprecatedAt).toISOString(),
      sunset: new Date(sunset).toISOString(),
      ...(link ? { link } : {}),
      headers: 'pending',
      headerValues: deprecationHeaders(deprecatedAt, sunset, link),
      approvers: [...v.plan.approvers],
    };
    setPhase(v, 'Deprecated', `deprecated; sunset ${v.retirement.sunset}`);
    audit(req.by, 'retire', true, req.reason, `${req.version}: sunset ${v.retirement.sunset}`);
  };

  const approve = (req: VersionActionInput, actor: Actor): void => {
    const r = find(req.version)?.retirement;
    if (!r) return;
    if (actor.claims) usedNonces = rememberNonce(usedNonces, actor.claims, Date.now());
    r.approvedBy = { by: actor.by, at: now(), ...(typeof req.reason === 'string' && req.reason ? { reason: req.reason } : {}) };
    audit(actor.by, 'approve-retirement', true, req.reason, actedOn(req.version, actor));
  };

  const abort = (req: VersionActionInput, actor: Actor): void => {
    const r = find(req.version)?.retirement;
    if (!r) return;
    if (actor.claims) usedNonces = rememberNonce(usedNonces, actor.claims, Date.now());
    r.abortedBy = { by: actor.by, at: now(), ...(typeof req.reason === 'string' && req.reason ? { reason: req.reason } : {}) };
    audit(actor.by, 'abort-retirement', true, req.reason, actedOn(req.version, actor));
  };

  const validate = (why: string | undefined): void => {
    if (why !== undefined) throw new Error(why);
  };
  wf.setHandler(introduceVersionUpdate, (req) => (introduce(req), status), { validator: (req) => validate(rejectIntroduce(req)) });
  wf.setHandler(retireVersionUpdate, (req) => (retire(req), status), { validator: (req) => validate(rejectRetire(req)) });
  for (const [update, signal, reject, act, name] of [
    [approveRetirementUpdate, approveRetirementSignal, rejectApprove, approve, 'approve-retirement'],
    [abortRetirementUpdate, abortRetirementSignal, rejectAbort, abort, 'abort-retirement'],
  ] as const) {
    wf.setHandler(
      update,
      (req) => {
        // The validator ran just before, in the same activation: the same check, the same answer.
        const check = checkRetirementAction(name, req, reject);
        if (!check.ok) throw wf.ApplicationFailure.nonRetryable(check.why, 'ActionRefused');
        act(req, check.actor);
        return status;
      },
      {
        validator: (req) => {
          const check = checkRetirementAction(name, req, reject);
          if (!check.ok) throw new Error(check.why);
        },
      },
    );
    wf.setHandler(signal, (req) => {
      const check = checkRetirementSignal(name, req, reject);
      if (check.ok) return act(req, check.actor);
      audit(check.auditAs, name, false, req !== null && typeof req === 'object' ? req.reason : undefined, `ignored: ${check.why}`);
    });
  }
  wf.setHandler(apiStatusQuery, () => status);

  // ---- start (or resume after continue-as-new) -------------------------------------------------------

  wf.upsertSearchAttributes([{ key: SERVICE_ATTRIBUTE, value: status.service }]);
  sync();
  for (const v of status.versions) startDriver(v);
  if (policy === undefined) policy = await identityActivities.identityPolicy();

  const historyFull = (): boolean => {
    const i = wf.workflowInfo();
    return i.continueAsNewSuggested || (input.historyLimit !== undefined && i.historyLength >= input.historyLimit);
  };
  await wf.condition(() => historyFull() && busy === 0 && wf.allHandlersFinished());
  status.continuedAsNew++;
  audit('glidepath', 'continue-as-new', true, undefined, `history at ${wf.workflowInfo().historyLength} events`);
  const next: ApiVersionsInput = { ...input, state: status };
  delete next.usedNonces; // only the live ones go on
  if (usedNonces.length > 0) next.usedNonces = usedNonces;
  await wf.continueAsNew<typeof apiVersions>(next);
}
