/**
 * Real clients for the activities: Kubernetes from KUBECONFIG (or in-cluster service account),
 * image builders (buildah, and buildctl/buildx when GLIDEPATH_BUILDKIT_ADDR is set: activities/build/builders.ts;
 * registry credentials from GLIDEPATH_REGISTRY_AUTH_FILE),
 * metric providers (credentials from the worker's environment, never from workflow input; the job
 * provider runs its Jobs with the worker's KubeConfig), and
 * Secret-valued analysis args read from the release's namespace.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Logger as Pino } from 'pino';
import type { ActivityDeps } from '../activities/contract.ts';
import { createKubernetesConfig, createKubernetesExperiments, createKubernetesRolling, createKubernetesWorkload } from '../activities/kubernetes/index.ts';
import { createJobProvider } from '../activities/metrics/job.ts';
import { createJudgeProvider } from '../activities/metrics/judge.ts';
import { createPrometheusProvider, prometheusOptionsFromEnv } from '../activities/metrics/prometheus.ts';
import { createAlbRouter } from '../activities/traffic/alb.ts';
import { createGatewayApiRouter } from '../activities/traffic/gateway-api.ts';
import { createTraefikRouter } from '../activities/traffic/traefik.ts';
import { createIstioRouter } from '../activities/traffic/istio.ts';
import { createNginxRouter } from '../activities/traffic/nginx.ts';
import { createSmiRouter } from '../activities/traffic/smi.ts';
import { createWebProvider } from '../activities/metrics/web.ts';
import { buildersFromEnv } from '../activities/build/builders.ts';
import { createVersioningActivities } from '../activities/versioning/index.ts';

export function buildDeps(log: Pino, env: NodeJS.ProcessEnv = process.env): ActivityDeps {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  log.info({ cluster: kc.getCurrentCluster()?.server, user: kc.getCurrentUser()?.name }, 'kubernetes');
  const core = kc.makeApiClient(CoreV1Api);
  const readinessProbe = env.GLIDEPATH_READINESS_PROBE_POLICY === 'warn' ? 'warn' : 'fail';
  const prometheus = createPrometheusProvider(prometheusOptionsFromEnv(env));
  return {
    builders: buildersFromEnv(env),
    workload: createKubernetesWorkload(kc, { readinessProbe }),
    rolling: createKubernetesRolling(kc, { readinessProbe }),
    experiments: createKubernetesExperiments(kc, { readinessProbe }),
    config: createKubernetesConfig(kc),
    // Keyed as ReleaseTarget.trafficRouting's keys (Argo's): `plugins` serves argoproj-labs/gatewayAPI, `gatewayAPI` the same block natively.
    routers: {
      istio: createIstioRouter(kc, env.GLIDEPATH_ISTIO_API_VERSION ? { apiVersion: env.GLIDEPATH_ISTIO_API_VERSION } : {}),
      gatewayAPI: createGatewayApiRouter(kc, { key: 'gatewayAPI', ...(env.GLIDEPATH_GATEWAY_API_VERSION ? { apiVersion: env.GLIDEPATH_GATEWAY_API_VERSION } : {}) }),
      plugins: createGatewayApiRouter(kc, env.GLIDEPATH_GATEWAY_API_VERSION ? { apiVersion: env.GLIDEPATH_GATEWAY_API_VERSION } : {}),
      nginx: createNginxRouter(kc),
      alb: createAlbRouter(kc),
      smi: createSmiRouter(kc, env.GLIDEPATH_SMI_API_VERSION ? { apiVersion: env.GLIDEPATH_SMI_API_VERSION } : {}),
      traefik: createTraefikRouter(kc),
    },
    metrics: { prometheus, web: createWebProvider(), job: createJobProvider(kc), judge: createJudgeProvider(prometheus) },
    secrets: async (namespace, ref) => {
      const secret = await core.readNamespacedSecret({ name: ref.name, namespace });
      const value = secret.data?.[ref.key];
      if (value === undefined) throw new Error(`secret ${namespace}/${ref.name} has no key ${ref.key}`);
      return Buffer.from(value, 'base64').toString('utf8');
    },
  };
}

/** The API-versioning activities (workflows/api-version.ts), on the same kubeconfig. */
export function buildVersioningActivities(env: NodeJS.ProcessEnv = process.env): ReturnType<typeof createVersioningActivities> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return createVersioningActivities(kc, env.GLIDEPATH_GATEWAY_API_VERSION ? { gatewayApiVersion: env.GLIDEPATH_GATEWAY_API_VERSION } : {});
}
