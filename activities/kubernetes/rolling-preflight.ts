/**
 * What preflight checks of the container a rolling release updates in place, whatever the workload
 * kind: it has an image, and a readiness probe (else the release's readiness policy fails or warns),
 * because every batch is judged by its pods' readiness.
 */
import type { V1Container } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import type { WorkloadRoom } from './room.ts';

/** Fails when the container has no image, or no readiness probe under a `fail` policy; returns its image and the warnings. */
export function checkBatchContainer(room: WorkloadRoom, t: ReleaseTarget, c: Pick<V1Container, 'name' | 'image' | 'readinessProbe'>, where: string): { image: string; warnings: string[] } {
  if (!c.image) throw ApplicationFailure.nonRetryable(`container ${c.name} of ${where} has no image`, ErrorType.PreflightFailed);
  if (c.readinessProbe) return { image: c.image, warnings: [] };
  const msg = `container ${c.name} of ${where} has no readinessProbe: pods count as ready as soon as they start, so a batch cannot be judged by readiness`;
  const policy = t.readinessProbePolicy === undefined ? room.readinessPolicy : t.readinessProbePolicy === 'warn' ? 'warn' : 'fail';
  if (policy === 'fail') throw ApplicationFailure.nonRetryable(msg, ErrorType.PreflightFailed);
  return { image: c.image, warnings: [msg] };
}
