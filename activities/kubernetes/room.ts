/**
 * What every part of the Kubernetes workload shares: the API clients, how waits poll and report,
 * and the cancellation signal. Built once by createKubernetesWorkload (index.ts).
 */
import type { KubeClients } from './client.ts';
import type { Heartbeat } from './context.ts';

export interface WorkloadRoom {
  k: KubeClients;
  /** How often a rollout wait polls the Deployment. */
  pollIntervalMs: number;
  /** Where rollout waits report progress. */
  heartbeat: Heartbeat;
  /** Cancels waits and requests, in addition to the running activity's cancellation. */
  signal?: AbortSignal | undefined;
  /** A stable container without a readiness probe fails preflight or only warns. */
  readinessPolicy: 'fail' | 'warn';
}
