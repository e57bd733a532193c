/**
 * Traefik traffic router (Argo's `trafficRouting.traefik: {weightedTraefikServiceName}`): the canary
 * weight on a weighted TraefikService (traefik.io/v1alpha1) in the release's namespace. Of its
 * `spec.weighted.services`, the Kubernetes Service entries named stableService and canaryService get
 * `weight: 100-w` and `w`; every other entry and field stays as it is. Like Argo's, it has no header
 * or mirror routes (refused at lint); removeManagedRoutes sets 100/0. Described in docs/traffic.md.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ReleaseTarget, TrafficRouter } from '../contract.ts';
import { checkWeight, invalidRouting, makeClients, readObject, updateObject, type ObjectRef, type RouterOptions, type RoutingObject } from './common.ts';

export interface TraefikRouting {
  weightedTraefikServiceName: string;
}

export interface TraefikRouterOptions extends RouterOptions {
  /** traefik.io version. Default v1alpha1. */
  apiVersion?: string;
}

interface WeightedService {
  name?: string;
  kind?: string;
  namespace?: string;
  weight?: number;
  [k: string]: unknown;
}

export function traefikRouting(target: ReleaseTarget): TraefikRouting {
  const block = target.trafficRouting?.traefik as TraefikRouting | undefined;
  if (!block || typeof block.weightedTraefikServiceName !== 'string' || block.weightedTraefikServiceName === '') {
    throw invalidRouting('trafficRouting.traefik needs weightedTraefikServiceName');
  }
  return block;
}

export function createTraefikRouter(kc: KubeConfig, opts: TraefikRouterOptions = {}): TrafficRouter {
  const k = makeClients(kc, opts);
  const group = 'traefik.io';
  const apiVersion = `${group}/${(opts.apiVersion ?? 'v1alpha1').replace(/^traefik\.io\//, '')}`;
  const ref = (target: ReleaseTarget): ObjectRef => ({
    apiVersion,
    kind: 'TraefikService',
    resource: `traefikservices.${group}`,
    namespace: target.namespace,
    name: traefikRouting(target).weightedTraefikServiceName,
  });

  /** The stable and canary entries of the TraefikService's weighted services (Kubernetes Services of the release's namespace). */
  const entries = (ts: RoutingObject, target: ReleaseTarget): { stable: WeightedService; canary: WeightedService } => {
    if (!target.stableService || !target.canaryService) throw invalidRouting('the traefik router needs stableService and canaryService');
    const where = `TraefikService ${ts.metadata?.namespace}/${ts.metadata?.name}`;
    const services = (ts.spec?.weighted as { services?: WeightedService[] } | undefined)?.services;
    if (!Array.isArray(services)) throw invalidRouting(`${where} has no spec.weighted.services: it must be a weighted TraefikService`);
    const find = (name: string, role: string): WeightedService => {
      const found = services.find((s) => s.name === name && (s.kind ?? 'Service') === 'Service' && (s.namespace ?? target.namespace) === target.namespace);
      if (!found) throw invalidRouting(`${where} has no weighted service ${name} (the ${role}; services: ${services.map((s) => s.name ?? '?').join(', ') || 'none'})`);
      return found;
    };
    return { stable: find(target.stableService, 'stableService'), canary: find(target.canaryService, 'canaryService') };
  };

  const weigh = (ts: RoutingObject, target: ReleaseTarget, weight: number): boolean => {
    const { stable, canary } = entries(ts, target);
    let changed = false;
    if (stable.weight !== 100 - weight) {
      stable.weight = 100 - weight;
      changed = true;
    }
    if (canary.weight !== weight) {
      canary.weight = weight;
      changed = true;
    }
    return changed;
  };

  return {
    type: 'traefik',

    async setWeight(target, weight) {
      checkWeight(weight);
      await updateObject(k, ref(target), (ts) => weigh(ts, target, weight), opts);
    },

    async verifyWeight(target, weight) {
      const { stable, canary } = entries(await readObject(k, ref(target)), target);
      // Traefik's default weight is 1 for an entry without one.
      return (canary.weight ?? 1) === weight && (stable.weight ?? 1) === 100 - weight;
    },

    async removeManagedRoutes(target) {
      await updateObject(k, ref(target), (ts) => weigh(ts, target, 0), opts);
    },
  };
}
