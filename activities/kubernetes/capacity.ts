/**
 * Capacity during a release: the stable's HorizontalPodAutoscaler and the user's
 * PodDisruptionBudget.
 *
 * - HPA floor. While a release runs, the stable is where traffic returns on abort, and the canary
 *   and preview are sized from it; an HPA shrinking it (its traffic moved away, or it is idle behind
 *   a blue/green switch) would leave it undersized. So each HPA scaling the stable gets its
 *   minReplicas raised to the stable's replicas when the release first writes, recorded in an
 *   annotation (`glidepath.dev/held-min-replicas`: the release, the user's value, the held value),
 *   and given back at promotion or abort, unless someone changed it meanwhile (then it is left and
 *   reported as drift).
 * - Role PDB. The canary/preview pods carry the stable's template labels, so a user's
 *   PodDisruptionBudget covering the stable usually covers them too (as Argo's covers every pod of a
 *   Rollout): then nothing more is made (a pod under two budgets cannot be evicted at all). Only when
 *   the user's budget selects the stable's pods but not the canary/preview's (it excludes the role
 *   label) does the canary/preview get its own (`<workload>-canary`), with the same budget, owned by
 *   the canary/preview Deployment and removed with it.
 */
import { PatchStrategy, type IntOrString, type V1Deployment, type V1PodDisruptionBudget, type V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { ReleaseTarget } from '../contract.ts';
import { MERGE_PATCH, stableReplicas } from './deployments.ts';
import { isNotFound } from './errors.ts';
import { ANNOTATIONS, FIELD_MANAGER, LABELS, MANAGED_BY, labelSelectorMatches, roleName, roleSelector, workloadLabelValue, type Role } from './objects.ts';
import type { WorkloadRoom } from './room.ts';

export type Capacity = ReturnType<typeof createCapacity>;

/** The annotation on an HPA whose minReplicas Glidepath holds. */
interface HeldFloor {
  release: string;
  /** The user's minReplicas (null: unset, i.e. 1). */
  original: number | null;
  held: number;
}

function parseHeld(hpa: V2HorizontalPodAutoscaler): HeldFloor | undefined {
  const raw = hpa.metadata?.annotations?.[ANNOTATIONS.heldMinReplicas];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<HeldFloor>;
    if (typeof v.held === 'number' && (v.original === null || typeof v.original === 'number')) return { release: String(v.release ?? ''), original: v.original, held: v.held };
  } catch {
    // unreadable: treated as not held
  }
  return undefined;
}

/**
 * The canary/preview's budget from the user's: a percentage or maxUnavailable is copied; an
 * integer minAvailable becomes maxUnavailable = stable replicas − minAvailable (the same number of
 * pods may be disrupted at a time, whatever the canary's size).
 */
export function roleBudget(user: V1PodDisruptionBudget, stableCount: number): { minAvailable?: IntOrString; maxUnavailable?: IntOrString } {
  const spec = user.spec ?? {};
  if (spec.maxUnavailable !== undefined) return { maxUnavailable: spec.maxUnavailable };
  const min = spec.minAvailable;
  if (typeof min === 'string') return { minAvailable: min };
  if (typeof min === 'number') return { maxUnavailable: Math.max(0, stableCount - min) };
  return { maxUnavailable: 0 };
}

export function createCapacity(room: WorkloadRoom) {
  const { k } = room;

  /** The autoscaling/v2 HPAs scaling the stable workload (a Deployment, or a StatefulSet or Deployment released with strategy.rolling). */
  const stableHpas = async (target: ReleaseTarget): Promise<V2HorizontalPodAutoscaler[]> => {
    const list = await k.call({ verb: 'list', resource: 'horizontalpodautoscalers.autoscaling', namespace: target.namespace }, () =>
      k.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace: target.namespace }),
    );
    return list.items.filter((h) => {
      const ref = h.spec?.scaleTargetRef;
      return ref?.kind === target.workload.kind && ref.name === target.workload.name && (ref.apiVersion === undefined || ref.apiVersion.startsWith('apps/'));
    });
  };

  const patchHpa = (hpa: V2HorizontalPodAutoscaler, body: object): Promise<unknown> => {
    const namespace = hpa.metadata?.namespace ?? '';
    const name = hpa.metadata?.name ?? '';
    return k.call({ verb: 'patch', resource: 'horizontalpodautoscalers.autoscaling', namespace, name }, () =>
      k.autoscaling.patchNamespacedHorizontalPodAutoscaler({ name, namespace, fieldManager: FIELD_MANAGER, body: { ...body, metadata: { resourceVersion: hpa.metadata?.resourceVersion, ...((body as { metadata?: object }).metadata ?? {}) } } }, MERGE_PATCH),
    );
  };

  /** Raises each HPA's minReplicas to the stable's replicas now (once per release); returns the floor held (also one held earlier in the release). */
  const holdFloor = async (target: ReleaseTarget, stable: V1Deployment): Promise<number | undefined> => {
    let floor: number | undefined;
    for (const hpa of await stableHpas(target)) {
      const held = parseHeld(hpa);
      if (held) {
        floor = Math.max(floor ?? 0, held.held);
        if (held.release === target.releaseId) continue;
      }
      const max = hpa.spec?.maxReplicas ?? 1;
      const current = hpa.spec?.minReplicas ?? 1;
      const want = Math.min(max, Math.max(held?.held ?? 0, stableReplicas(stable)));
      if (!held && current >= want) continue; // the user's floor already holds the stable's size
      const record: HeldFloor = { release: target.releaseId, original: held ? held.original : (hpa.spec?.minReplicas ?? null), held: Math.max(current, want) };
      await patchHpa(hpa, { metadata: { annotations: { [ANNOTATIONS.heldMinReplicas]: JSON.stringify(record) } }, spec: { minReplicas: record.held } });
      floor = Math.max(floor ?? 0, record.held);
    }
    return floor;
  };

  /** The floor this release holds on the stable's HPAs, if any (for sizing from a stable an HPA shrank before the floor took effect). */
  const heldFloor = async (target: ReleaseTarget): Promise<number | undefined> => {
    let floor: number | undefined;
    for (const hpa of await stableHpas(target)) {
      const held = parseHeld(hpa);
      if (held) floor = Math.max(floor ?? 0, held.held);
    }
    return floor;
  };

  /** How many pods the stable is meant to have now: its replicas (an HPA writes them), never below the floor held for the release. */
  const liveDesired = async (target: ReleaseTarget, stable: V1Deployment): Promise<number> => Math.max(stableReplicas(stable), (await heldFloor(target)) ?? 0);

  /** Gives each held HPA back its own minReplicas, unless it was changed meanwhile (then it is drift, left as it is). */
  const releaseFloor = async (target: ReleaseTarget): Promise<string[]> => {
    const drift: string[] = [];
    for (const hpa of await stableHpas(target)) {
      const held = parseHeld(hpa);
      if (!held) continue;
      const annotations = { [ANNOTATIONS.heldMinReplicas]: null };
      if ((hpa.spec?.minReplicas ?? 1) === held.held) {
        await patchHpa(hpa, { metadata: { annotations }, spec: { minReplicas: held.original } });
      } else {
        drift.push(
          `HorizontalPodAutoscaler ${target.namespace}/${hpa.metadata?.name} minReplicas is ${hpa.spec?.minReplicas ?? 1}, changed by someone else during the release (Glidepath had raised it from ${held.original ?? 1} to ${held.held}): left as it is`,
        );
        await patchHpa(hpa, { metadata: { annotations } });
      }
    }
    return drift;
  };

  // ---- role PodDisruptionBudget ----

  const pdbSite = (target: ReleaseTarget, role: Role, verb: string) => ({ verb, resource: 'poddisruptionbudgets.policy', namespace: target.namespace, name: roleName(target.workload.name, role) });

  /** The user's PDB covering the stable's pods (the first by name), if any. */
  const userPdb = async (target: ReleaseTarget, stable: V1Deployment): Promise<V1PodDisruptionBudget | undefined> => {
    const list = await k.call({ verb: 'list', resource: 'poddisruptionbudgets.policy', namespace: target.namespace }, () =>
      k.policy.listNamespacedPodDisruptionBudget({ namespace: target.namespace }),
    );
    const podLabels = stable.spec?.template?.metadata?.labels ?? {};
    return list.items
      .filter((p) => p.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY && labelSelectorMatches(p.spec?.selector, podLabels))
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))[0];
  };

  /**
   * The role's PDB from the user's (server-side apply, owned by the role Deployment); none when no
   * user PDB covers the stable, or when it covers the role's pods too (a left-over one is removed).
   */
  const ensureRolePdb = async (target: ReleaseTarget, stable: V1Deployment, role: Role, owner: V1Deployment): Promise<void> => {
    const user = await userPdb(target, stable);
    if (!user) return;
    if (labelSelectorMatches(user.spec?.selector, owner.spec?.template?.metadata?.labels ?? {})) return removeRolePdb(target, role);
    const name = roleName(target.workload.name, role);
    const body: V1PodDisruptionBudget = {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: {
        name,
        namespace: target.namespace,
        labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.role]: role, [LABELS.workload]: workloadLabelValue(target.workload.name) },
        annotations: { [ANNOTATIONS.release]: target.releaseId, [ANNOTATIONS.fromPdb]: user.metadata?.name ?? '' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: owner.metadata?.name ?? name, uid: owner.metadata?.uid ?? '' }],
      },
      spec: {
        selector: { matchLabels: { ...(owner.spec?.selector?.matchLabels ?? roleSelector(stable, role)) } },
        ...roleBudget(user, stableReplicas(stable)),
        ...(user.spec?.unhealthyPodEvictionPolicy ? { unhealthyPodEvictionPolicy: user.spec.unhealthyPodEvictionPolicy } : {}),
      },
    };
    await k.call(pdbSite(target, role, 'apply'), () => k.objects.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
  };

  /** Deletes the role's PDB (only one Glidepath made); absent is fine. */
  const removeRolePdb = async (target: ReleaseTarget, role: Role): Promise<void> => {
    const namespace = target.namespace;
    const name = roleName(target.workload.name, role);
    try {
      const pdb = await k.call(pdbSite(target, role, 'get'), () => k.policy.readNamespacedPodDisruptionBudget({ name, namespace }));
      if (pdb.metadata?.labels?.[LABELS.managedBy] !== MANAGED_BY) return; // the user's own object: not ours to delete
      await k.call(pdbSite(target, role, 'delete'), () => k.policy.deleteNamespacedPodDisruptionBudget({ name, namespace }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };

  return { stableHpas, holdFloor, heldFloor, liveDesired, releaseFloor, userPdb, ensureRolePdb, removeRolePdb };
}
