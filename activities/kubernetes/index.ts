/**
 * {@link WorkloadOps} on a real cluster with @kubernetes/client-node: canary and preview
 * Deployments derived from the user's (stable) Deployment, replica-ratio canary weights, Service
 * selector switches for blue/green, preflight checks, and the stable's capacity held through a
 * release (HPA floor, PodDisruptionBudgets for the canary/preview). Every operation converges the
 * cluster to a described state, so running it twice (a Temporal retry) changes nothing the second
 * time. The object model and each operation are described in docs/kubernetes.md.
 *
 * The parts, one concern each: deployments.ts (the Deployments and rollout waits), services.ts
 * (Service selectors), capacity.ts (HPA floor, role PDBs), canary.ts, blue-green.ts, preflight.ts,
 * cleanup.ts (cleanup that does every part it can).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ActivityDeps, WorkloadOps } from '../contract.ts';
import { createBlueGreenOps } from './blue-green.ts';
import { createCanaryOps } from './canary.ts';
import { createCapacity } from './capacity.ts';
import { createConfigOps, type ConfigOps } from './config.ts';
import { createKubeClients } from './client.ts';
import { activityHeartbeat, type Heartbeat } from './context.ts';
import { createDaemonSetRolling } from './daemonsets.ts';
import { createDeploymentRolling } from './deployment-rolling.ts';
import { createDeployments } from './deployments.ts';
import { createExperimentOps, type ExperimentOps } from './experiment.ts';
import { createPreflight } from './preflight.ts';
import type { WorkloadRoom } from './room.ts';
import { createServices } from './services.ts';
import { createStatefulSetRolling } from './statefulsets.ts';

export interface KubernetesWorkloadOptions {
  /** A stable container without a readiness probe fails preflight (`fail`, the default) or only warns. */
  readinessProbe?: 'fail' | 'warn';
  /** How often a rollout wait polls the Deployment. Default 500 ms. */
  pollIntervalMs?: number;
  /** Per-request timeout for every apiserver call. Default 15 s: half the rollout activities' 30 s heartbeat timeout, so a hung request inside a wait cannot outlast a heartbeat. */
  requestTimeoutMs?: number;
  /** Where rollout waits report progress. Default: the running activity's heartbeat (nothing outside an activity). */
  heartbeat?: Heartbeat;
  /** Cancels waits and requests, in addition to the running activity's cancellation. */
  signal?: AbortSignal;
}

function createRoom(kc: KubeConfig, opts: KubernetesWorkloadOptions): WorkloadRoom {
  return {
    k: createKubeClients(kc, { requestTimeoutMs: opts.requestTimeoutMs ?? 15_000, signal: opts.signal }),
    pollIntervalMs: opts.pollIntervalMs ?? 500,
    heartbeat: opts.heartbeat ?? activityHeartbeat,
    signal: opts.signal,
    readinessPolicy: opts.readinessProbe ?? 'fail',
  };
}

/** strategy.rolling on a real cluster, per workload kind: StatefulSets by partition (statefulsets.ts), Deployments paused between batches (deployment-rolling.ts), DaemonSets node by node (daemonsets.ts). */
export function createKubernetesRolling(kc: KubeConfig, opts: KubernetesWorkloadOptions = {}): NonNullable<ActivityDeps['rolling']> {
  const room = createRoom(kc, opts);
  const capacity = createCapacity(room);
  return { StatefulSet: createStatefulSetRolling(room, capacity), Deployment: createDeploymentRolling(room, createDeployments(room), capacity), DaemonSet: createDaemonSetRolling(room) };
}

/** spec.config's content-hashed copies (config.ts). */
export function createKubernetesConfig(kc: KubeConfig, opts: KubernetesWorkloadOptions = {}): ConfigOps {
  const room = createRoom(kc, opts);
  return createConfigOps(room, createDeployments(room));
}

/** The workloads of experiment steps (experiment.ts). */
export function createKubernetesExperiments(kc: KubeConfig, opts: KubernetesWorkloadOptions = {}): ExperimentOps {
  return createExperimentOps(createRoom(kc, opts));
}

export function createKubernetesWorkload(kc: KubeConfig, opts: KubernetesWorkloadOptions = {}): WorkloadOps {
  const room = createRoom(kc, opts);
  const deployments = createDeployments(room);
  const services = createServices(room);
  const capacity = createCapacity(room);
  return {
    preflight: createPreflight(room, deployments, services, capacity),
    ...createCanaryOps(room, deployments, services, capacity),
    ...createBlueGreenOps(deployments, services, capacity),
  };
}

export type { Heartbeat } from './context.ts';
export { rolloutState, waitForRollout } from './rollout.ts';
export { classifyKubeError } from './errors.ts';
export { ALL_ACCESS, requiredAccess } from './access.ts';
export { ANNOTATIONS, FIELD_MANAGER, LABELS, roleName, roleSelector } from './objects.ts';
export type { CleanupReport } from './cleanup.ts';
