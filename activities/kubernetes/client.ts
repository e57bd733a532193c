/**
 * The Kubernetes API clients the workload activities use, built from a KubeConfig, with a
 * per-request timeout (and the running activity's cancellation) on every request, and one `call`
 * wrapper that classifies every failure (see errors.ts).
 */
import {
  AppsV1Api,
  AuthorizationV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  KubernetesObjectApi,
  PolicyV1Api,
  ServerConfiguration,
  createConfiguration,
  type KubeConfig,
  type Middleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { cancellationSignal } from './context.ts';
import { classifyKubeError, type CallSite } from './errors.ts';

export interface KubeClients {
  apps: AppsV1Api;
  core: CoreV1Api;
  authz: AuthorizationV1Api;
  autoscaling: AutoscalingV2Api;
  policy: PolicyV1Api;
  objects: KubernetesObjectApi;
  /** Runs one API call; any failure comes out classified (retryable Error or non-retryable ApplicationFailure). */
  call<T>(site: CallSite, fn: () => Promise<T>): Promise<T>;
}

const DISPATCHER_MAX_AGE_MS = 5 * 60_000;

export function createKubeClients(kc: KubeConfig, opts: { requestTimeoutMs: number; signal?: AbortSignal | undefined }): KubeClients {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  // client-node 2.x gives every request a new undici Agent (a TCP and TLS handshake each time, about
  // 50 ms against the local apiserver). The first one is kept and reused, so connections stay open;
  // it is replaced every few minutes so rotated client certificates in the kubeconfig are picked up.
  type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;
  let shared: { dispatcher: Dispatcher; since: number } | undefined;
  const reuseConnections = (ctx: RequestContext): void => {
    const fresh = ctx.getDispatcher();
    if (!fresh) return; // plain http without TLS options: the global dispatcher already pools
    const now = Date.now();
    if (!shared || now - shared.since > DISPATCHER_MAX_AGE_MS) {
      const old = shared?.dispatcher;
      shared = { dispatcher: fresh, since: now };
      if (old) void old.close().catch(() => undefined); // graceful: in-flight requests finish
    }
    ctx.setDispatcher(shared.dispatcher);
  };
  const limits: Middleware = {
    async pre(ctx: RequestContext): Promise<RequestContext> {
      reuseConnections(ctx);
      const timeout = AbortSignal.timeout(opts.requestTimeoutMs);
      const cancel = cancellationSignal(opts.signal);
      ctx.setSignal(cancel ? AbortSignal.any([timeout, cancel]) : timeout);
      ctx.setHeaderParam('User-Agent', 'glidepath');
      return ctx;
    },
    async post(rsp: ResponseContext): Promise<ResponseContext> {
      return rsp;
    },
  };
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [limits],
  });
  return {
    apps: new AppsV1Api(config),
    core: new CoreV1Api(config),
    authz: new AuthorizationV1Api(config),
    autoscaling: new AutoscalingV2Api(config),
    policy: new PolicyV1Api(config),
    objects: new KubernetesObjectApi(config),
    async call<T>(site: CallSite, fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (err) {
        throw classifyKubeError(err, site, cancellationSignal(opts.signal));
      }
    },
  };
}
