/**
 * The job metric provider (Argo's `provider.job`): each measurement creates a Kubernetes Job from
 * `provider.job.spec` in the release's namespace, waits until the Job is Complete (value 1) or Failed
 * (value 0), then deletes it (propagation Background, so its pods go too).
 *
 * Argo treats a complete Job as a Successful measurement and a failed one as Failed, whatever the
 * conditions say. Here the provider returns the value and model/analysis.ts decides as for every
 * provider; model/normalize.ts gives a job metric without conditions `successCondition: result == 1`,
 * so a failed Job is a Failed measurement, as in Argo.
 *
 * The Job is named `<release>-<metric>-<measurement>-<random>` (a DNS label, at most 63 characters),
 * labelled `app.kubernetes.io/managed-by: glidepath`, `rollouts.glidepath.dev/release` and
 * `rollouts.glidepath.dev/metric`, and annotated with the full release ID and metric name.
 * `{{args.x}}` is substituted in every string of `metadata` and `spec` (as Argo does); a secret arg
 * placed there ends up in the Job object, as in Argo.
 *
 * The Job's pod is held to the restricted shape of model/job-pod.ts (checked again here, after args are
 * substituted: a refused pod is a non-retryable `InvalidSpec` naming the field, and no Job is created),
 * and the Job always goes to the release's namespace, whatever `metadata` in the spec says.
 *
 * Fails closed: an API error, or the Job vanishing while it runs, is an Error measurement; a Job the
 * apiserver rejects (400/422: an invalid JobSpec) is a non-retryable `InvalidSpec`. The wait ends when
 * the measurement's signal does: the analysis aborts it at the measurement's timeout
 * (`activeDeadlineSeconds` plus a minute, else an hour; model/analysis.ts) or when the analysis is
 * cancelled, and the Job is deleted either way. The Job's name reaches the analysis's heartbeat details
 * (`onStarted`), so a retried attempt deletes the Job a worker that died mid-measurement left (`abandon`).
 */
import { randomBytes } from 'node:crypto';
import {
  ApiException,
  BatchV1Api,
  ServerConfiguration,
  createConfiguration,
  type KubeConfig,
  type Middleware,
  type RequestContext,
  type ResponseContext,
  type V1Job,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { jobPodProblems } from '../../model/job-pod.ts';
import { TemplateError, renderJsonValue } from '../../model/template.ts';
import type { JobProviderSpec, MetricSpec } from '../../model/types.ts';
import type { MeasureContext, MetricProvider } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import { MeasurementError, clip } from './prometheus.ts';

export const JOB_LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  release: 'rollouts.glidepath.dev/release',
  metric: 'rollouts.glidepath.dev/metric',
} as const;
export const JOB_ANNOTATIONS = { release: 'glidepath.dev/release', metric: 'glidepath.dev/metric' } as const;

/** Attempts at deleting a finished or cancelled measurement's Job. */
const DELETE_ATTEMPTS = 4;

export interface JobProviderOptions {
  /** How often the Job's status is read while it runs. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Timeout of each API request. Default 10 s. */
  requestTimeoutMs?: number;
}

/** `text` as a DNS-1123 label fragment: lowercase alphanumerics and '-', at most `max` characters. */
function dnsFragment(text: string, max: number): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, max)
    .replace(/^-+|-+$/g, '');
}

/** A label value (at most 63 characters, alphanumeric at both ends). */
function labelValue(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** `<release>-<metric>-<n>-<random>`, a DNS label of at most 63 characters (pods add their own suffix). */
export function jobName(releaseId: string, metric: string, measurement: number): string {
  const suffix = `-${measurement}-${randomBytes(3).toString('hex')}`;
  const base = dnsFragment(`${releaseId}-${metric}`, 63 - suffix.length) || 'analysis';
  return `${base}${suffix}`;
}

/** 'Complete' or 'Failed' once the Job controller says so, else undefined. */
export function jobOutcome(job: V1Job): 'Complete' | 'Failed' | undefined {
  for (const c of job.status?.conditions ?? []) {
    if (c.status !== 'True') continue;
    if (c.type === 'Complete') return 'Complete';
    if (c.type === 'Failed') return 'Failed';
  }
  return undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function createJobProvider(kc: KubeConfig, options: JobProviderOptions = {}): MetricProvider {
  const pollMs = options.pollIntervalMs ?? 1000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  let counter = 0;

  /** A client whose every request is bounded by the timeout and by `signal` (when given). */
  const batchFor = (signal: AbortSignal | undefined): BatchV1Api => {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const limits: Middleware = {
      async pre(ctx: RequestContext): Promise<RequestContext> {
        const timeout = AbortSignal.timeout(requestTimeoutMs);
        ctx.setSignal(signal ? AbortSignal.any([timeout, signal]) : timeout);
        ctx.setHeaderParam('User-Agent', 'glidepath');
        return ctx;
      },
      async post(rsp: ResponseContext): Promise<ResponseContext> {
        return rsp;
      },
    };
    return new BatchV1Api(createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: kc }, promiseMiddleware: [limits] }));
  };

  const apiMessage = (err: unknown): string => {
    if (err instanceof ApiException) {
      const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
      let message = body;
      try {
        message = (JSON.parse(body) as { message?: string }).message ?? body;
      } catch {
        // not JSON
      }
      return `${err.code}: ${clip(message, 300)}`;
    }
    return (err as Error).message;
  };

  /**
   * Deletes the Job (its pods go with it), retrying a failed request a few times; a 404 means it is
   * gone. Best effort in the end: a Job left by a lasting API outage carries our labels.
   */
  const deleteJob = async (namespace: string, name: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await batchFor(undefined).deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
        return;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return;
        if (attempt >= DELETE_ATTEMPTS) return;
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  };

  return {
    type: 'job',
    async abandon(namespace: string, name: string): Promise<void> {
      try {
        await batchFor(undefined).deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return; // already gone
        throw new Error(`job ${namespace}/${name} left by an earlier attempt could not be deleted: ${apiMessage(err)}`, { cause: err }); // retried with the attempt
      }
    },
    async measure(metric: MetricSpec, ctx: MeasureContext): Promise<unknown> {
      if (!('job' in metric.provider)) throw ApplicationFailure.nonRetryable(`metric "${metric.name}" has no job provider`, ErrorType.InvalidSpec);
      const namespace = ctx.namespace;
      if (!namespace) throw ApplicationFailure.nonRetryable(`metric "${metric.name}": the job provider needs the release's namespace`, ErrorType.InvalidSpec);
      const releaseId = ctx.releaseId ?? 'analysis';
      let spec: JobProviderSpec;
      try {
        spec = renderJsonValue(metric.provider.job, ctx.args) as JobProviderSpec;
      } catch (err) {
        if (err instanceof TemplateError) throw ApplicationFailure.nonRetryable(err.message, ErrorType.InvalidSpec);
        throw err;
      }
      // Checked after rendering, so no arg can widen the pod; nothing is created when it is refused.
      const refused = jobPodProblems(spec.spec);
      if (refused.length > 0) {
        const fields = refused.map((p) => `provider.job.spec.${p.path.join('.')}: ${p.message}`).join('; ');
        throw ApplicationFailure.nonRetryable(`metric "${metric.name}": ${fields}`, ErrorType.InvalidSpec);
      }
      const name = jobName(releaseId, metric.name, ctx.measurement ?? ++counter);
      const body: V1Job = {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: {
          name,
          namespace,
          labels: {
            ...(spec.metadata?.labels ?? {}),
            [JOB_LABELS.managedBy]: 'glidepath',
            [JOB_LABELS.release]: labelValue(releaseId),
            [JOB_LABELS.metric]: labelValue(metric.name),
          },
          annotations: { ...(spec.metadata?.annotations ?? {}), [JOB_ANNOTATIONS.release]: releaseId, [JOB_ANNOTATIONS.metric]: metric.name },
        },
        spec: spec.spec as unknown as V1Job['spec'],
      };

      // Named before it is created, so a worker that dies while the create is on the wire leaves a
      // handle a retried attempt can delete (a Job never created is a 404 there).
      ctx.onStarted?.(name);
      ctx.signal.throwIfAborted();
      let mayExist = true;
      try {
        try {
          // Not bound to the signal: a create the apiserver may already have taken is always answered,
          // then followed by the delete below. Aborting it would leave a Job nobody deletes.
          await batchFor(undefined).createNamespacedJob({ namespace, body });
        } catch (err) {
          if (err instanceof ApiException && (err.code === 400 || err.code === 422)) {
            mayExist = false;
            throw ApplicationFailure.nonRetryable(`metric "${metric.name}": the apiserver rejected the Job: ${apiMessage(err)}`, ErrorType.InvalidSpec);
          }
          throw new MeasurementError(`job ${namespace}/${name} could not be created: ${apiMessage(err)}`);
        }
        ctx.signal.throwIfAborted();
        const batch = batchFor(ctx.signal);
        for (;;) {
          let job: V1Job;
          try {
            job = await batch.readNamespacedJobStatus({ name, namespace });
          } catch (err) {
            if (ctx.signal.aborted) throw err;
            if (err instanceof ApiException && err.code === 404) throw new MeasurementError(`job ${namespace}/${name} was deleted before it finished`);
            throw new MeasurementError(`job ${namespace}/${name}: status unreadable: ${apiMessage(err)}`);
          }
          const outcome = jobOutcome(job);
          if (outcome === 'Complete') return 1;
          if (outcome === 'Failed') return 0;
          await sleep(pollMs, ctx.signal);
        }
      } finally {
        // Delete even when cancelled: a fresh client, not bound to the (possibly aborted) signal.
        if (mayExist) await deleteJob(namespace, name);
      }
    },
  };
}
