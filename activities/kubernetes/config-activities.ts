/**
 * The `spec.config` activities the release workflow calls: the copies made (names come back, never
 * values) and the ones no Deployment of the workload uses any more removed. Delegates to the
 * worker's config operations (config.ts).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ConfigCopy, ConfigRef } from '../../model/config.ts';
import type { ActivityDeps, ReleaseTarget } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import type { ConfigOps, PreparedConfig } from './config.ts';

export function configActivities(deps: ActivityDeps) {
  const ops = (): ConfigOps => {
    if (!deps.config) throw ApplicationFailure.nonRetryable('spec.config is not available on this worker', ErrorType.InvalidSpec);
    return deps.config;
  };
  return {
    /** Every source checked, then its content-hashed copy applied; the copies' names for the target. */
    async prepareConfig(target: ReleaseTarget, refs: ConfigRef[]): Promise<PreparedConfig> {
      return ops().prepareConfig(target, refs);
    },
    /** The candidates that are Glidepath's copies and unused by the workload's Deployments, deleted. */
    async collectConfig(target: ReleaseTarget, candidates: ConfigCopy[]): Promise<{ deleted: string[] }> {
      return ops().collectConfig(target, candidates);
    },
  };
}
