/**
 * SMI traffic router (Argo's `trafficRouting.smi`): a TrafficSplit (split.smi-spec.io) named
 * `trafficSplitName` (default: the workload's name) that Glidepath creates and owns, with
 * `spec.service` = rootService (default stableService) and two backends, canaryService at the canary
 * weight and stableService at 100 − weight. Backends someone else added, labels and annotations stay
 * as they are. A TrafficSplit of that name that Glidepath did not create is refused, as Argo refuses
 * one its Rollout does not own. Weights only: a TrafficSplit has no header or mirror routes. An
 * experiment step's weighted templates are extra backends (their Services, as Argo's
 * additionalDestinations), the stable at 100 − canary − theirs; their Services are recorded in an
 * annotation so that the next setWeight without them (the step's end, an abort) removes them.
 * Described in docs/traffic.md.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ReleaseTarget, TrafficRouter, WeightDestination } from '../contract.ts';
import {
  EXPERIMENT_DESTINATIONS_ANNOTATION,
  checkWeight,
  ensureObject,
  invalidRouting,
  isOwned,
  makeClients,
  ownedLabels,
  managedNames,
  readOptional,
  sameJson,
  setManagedNames,
  stableWeightWith,
  updateObject,
  OWNED_LABELS,
  type ObjectRef,
  type RouterOptions,
  type RoutingObject,
} from './common.ts';

/** Argo's `trafficRouting.smi` block. */
export interface SmiRouting {
  rootService?: string;
  trafficSplitName?: string;
}

export interface SmiRouterOptions extends RouterOptions {
  /** split.smi-spec.io version (integer weights: v1alpha2 or later). Default v1alpha2, the version OSM's CRD stores and serves. */
  apiVersion?: string;
}

interface Backend {
  service?: string;
  weight?: number;
  [k: string]: unknown;
}

export function smiRouting(target: ReleaseTarget): SmiRouting {
  const block = target.trafficRouting?.smi as SmiRouting | undefined;
  if (!block || typeof block !== 'object') throw invalidRouting('trafficRouting.smi is missing');
  return block;
}

export function createSmiRouter(kc: KubeConfig, opts: SmiRouterOptions = {}): TrafficRouter {
  const k = makeClients(kc, opts);
  const group = 'split.smi-spec.io';
  const version = (opts.apiVersion ?? 'v1alpha2').replace(/^split\.smi-spec\.io\//, '');
  if (version === 'v1alpha1') throw new Error('split.smi-spec.io/v1alpha1 (weights as quantities) is not supported; use v1alpha2 or later');
  const apiVersion = `${group}/${version}`;

  const config = (target: ReleaseTarget) => {
    const block = smiRouting(target);
    if (!target.stableService || !target.canaryService) throw invalidRouting('the smi router needs stableService and canaryService');
    const ref: ObjectRef = { apiVersion, kind: 'TrafficSplit', resource: `trafficsplits.${group}`, namespace: target.namespace, name: block.trafficSplitName ?? target.workload.name };
    return { ref, root: block.rootService ?? target.stableService, stable: target.stableService, canary: target.canaryService };
  };
  type Config = ReturnType<typeof config>;

  const checkOwned = (ts: RoutingObject, target: ReleaseTarget): void => {
    if (!isOwned(ts, target.workload.name)) {
      throw invalidRouting(
        `TrafficSplit ${ts.metadata?.namespace}/${ts.metadata?.name} exists but Glidepath did not create it for ${target.workload.name} ` +
          `(labels ${OWNED_LABELS.managedBy}=glidepath, ${OWNED_LABELS.workload}=${target.workload.name} missing): set trafficSplitName to another name, or remove it`,
      );
    }
  };

  /**
   * Sets spec.service, the two backends' weights and the experiment's backends (`extras`; recorded
   * ones it does not name are removed) on a copy (other backends untouched); false when already so.
   */
  const weigh = (ts: RoutingObject, c: Config, weight: number, extras: readonly WeightDestination[] = []): boolean => {
    const spec = (ts.spec ?? {}) as { service?: string; backends?: Backend[] };
    const added = managedNames(ts, EXPERIMENT_DESTINATIONS_ANNOTATION);
    const wanted = new Set(extras.map((e) => e.service));
    const all = spec.backends ?? [];
    const backends = all.filter((b) => !(b.service !== undefined && added.includes(b.service) && !wanted.has(b.service) && b.service !== c.canary && b.service !== c.stable));
    let changed = backends.length !== all.length;
    if (spec.service !== c.root) changed = true;
    for (const [service, w] of [
      [c.canary, weight],
      ...extras.map((e) => [e.service, e.weight] as const),
      [c.stable, stableWeightWith(weight, extras)],
    ] as const) {
      const b = backends.find((x) => x.service === service);
      if (!b) {
        backends.push({ service, weight: w });
        changed = true;
      } else if (b.weight !== w) {
        b.weight = w;
        changed = true;
      }
    }
    const hosts = extras.map((e) => e.service);
    if (!sameJson(added, hosts)) {
      setManagedNames(ts, hosts, EXPERIMENT_DESTINATIONS_ANNOTATION);
      changed = true;
    }
    if (changed) ts.spec = { ...spec, service: c.root, backends };
    return changed;
  };

  return {
    type: 'smi',
    experimentWeights: true,

    async setWeight(target, weight, extras = []) {
      checkWeight(weight);
      const stable = stableWeightWith(weight, extras);
      const c = config(target);
      await ensureObject(
        k,
        c.ref,
        () => ({
          apiVersion,
          kind: 'TrafficSplit',
          metadata: {
            name: c.ref.name,
            namespace: c.ref.namespace,
            labels: ownedLabels(target.workload.name),
            ...(extras.length > 0 ? { annotations: { [EXPERIMENT_DESTINATIONS_ANNOTATION]: JSON.stringify(extras.map((e) => e.service)) } } : {}),
          },
          spec: { service: c.root, backends: [{ service: c.canary, weight }, ...extras.map((e) => ({ service: e.service, weight: e.weight })), { service: c.stable, weight: stable }] },
        }),
        (ts) => {
          checkOwned(ts, target);
          return weigh(ts, c, weight, extras);
        },
        opts,
      );
    },

    async verifyWeight(target, weight, extras = []) {
      const c = config(target);
      const ts = await readOptional(k, c.ref);
      if (!ts) return false;
      checkOwned(ts, target);
      const spec = (ts.spec ?? {}) as { service?: string; backends?: Backend[] };
      const w = (service: string) => spec.backends?.find((b) => b.service === service)?.weight;
      const left = managedNames(ts, EXPERIMENT_DESTINATIONS_ANNOTATION).filter((s) => !extras.some((e) => e.service === s) && w(s) !== undefined);
      return spec.service === c.root && w(c.canary) === weight && w(c.stable) === 100 - weight - extras.reduce((sum, e) => sum + e.weight, 0) && extras.every((e) => w(e.service) === e.weight) && left.length === 0;
    },

    /** 100/0 on the TrafficSplit if it exists (it is kept, as Argo keeps it; none is created). */
    async removeManagedRoutes(target) {
      const c = config(target);
      if (!(await readOptional(k, c.ref))) return;
      await updateObject(
        k,
        c.ref,
        (ts) => {
          checkOwned(ts, target);
          return weigh(ts, c, 0);
        },
        opts,
      );
    },
  };
}
