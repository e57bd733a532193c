/** Real clients for the activities: Kubernetes from KUBECONFIG (or in-cluster), metric providers, secrets. */
import type { Logger as Pino } from 'pino';
import type { ActivityDeps } from '../activities/contract.ts';

export async function buildDeps(log: Pino): Promise<ActivityDeps> {
  const { KubeConfig, CoreV1Api } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  log.info({ cluster: kc.getCurrentCluster()?.server }, 'kubernetes');
  const { createKubernetesWorkload } = await import('../activities/kubernetes/index.ts');
  const core = kc.makeApiClient(CoreV1Api);
  return {
    workload: createKubernetesWorkload(kc, {}),
    metrics: await metricProviders(),
    secrets: async (namespace, ref) => {
      const secret = await core.readNamespacedSecret({ name: ref.name, namespace });
      const value = secret.data?.[ref.key];
      if (value === undefined) throw new Error(`secret ${namespace}/${ref.name} has no key ${ref.key}`);
      return Buffer.from(value, 'base64').toString('utf8');
    },
  };
}

async function metricProviders(): Promise<ActivityDeps['metrics']> {
  const providers: NonNullable<ActivityDeps['metrics']> = {};
  try {
    const prometheus = await import('../activities/metrics/prometheus.ts');
    const make = (prometheus as Record<string, unknown>).createPrometheusProvider as (() => NonNullable<ActivityDeps['metrics']>[string]) | undefined;
    if (make) providers.prometheus = make();
  } catch {
    // provider not built into this version
  }
  return providers;
}
