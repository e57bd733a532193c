/**
 * Traefik as the real proxy of the request-level tests and the demo: its Gateway API provider (GatewayClass `traefik`,
 * controller `traefik.io/gateway-controller`) and its NGINX Ingress provider (IngressClass `nginx`,
 * controller `k8s.io/ingress-nginx`, the canary annotations) read the local control plane through
 * KUBECONFIG, and it listens on loopback only. The binary comes from scripts/provision-traefik.sh
 * (TRAEFIK_BIN). Configuration changes apply without throttling, so a test sees the proxy follow the
 * objects as fast as Traefik's watches do.
 */
import path from 'node:path';
import { spawnDaemon, type Daemon } from './daemon.ts';

/** The GatewayClass and IngressClass Traefik serves here. */
export const GATEWAY_CLASS = { name: 'traefik', controllerName: 'traefik.io/gateway-controller' };
export const INGRESS_CLASS = { name: 'nginx', controller: 'k8s.io/ingress-nginx' };

export interface Traefik {
  /** `http://127.0.0.1:<port>`: the entry point requests go to. */
  url: string;
  /** The entry point's port: a Gateway's listener must use the same. */
  port: number;
  /** `http://127.0.0.1:<port>/metrics`: Traefik's Prometheus metrics. */
  metricsUrl: string;
  /** `127.0.0.1:<port>` of ping, metrics and API (a Prometheus scrape target). */
  adminAddress: string;
  /** `http://127.0.0.1:<port>/api`: Traefik's API (the routers and services it serves now). */
  apiUrl: string;
  daemon: Daemon;
  /** The access log's lines so far: one JSON line per answer with status 500 or more. */
  failedRequests(): string[];
  stop(): Promise<void>;
}

/** Why Traefik cannot run here, or undefined when TRAEFIK_BIN names a binary. */
export function traefikUnavailable(): string | undefined {
  return process.env.TRAEFIK_BIN ? undefined : 'TRAEFIK_BIN is not set (export TRAEFIK_BIN=$(bash scripts/provision-traefik.sh))';
}

export interface TraefikOptions {
  kubeconfig: string;
  /** Entry point port on 127.0.0.1. */
  port: number;
  /** Ping and metrics port on 127.0.0.1. */
  adminPort: number;
  /** Only these namespaces are watched by the Gateway API provider (default: all). */
  namespaces?: string[];
  /** Also the kubernetesCRD provider (IngressRoute, TraefikService…): every Traefik CRD must be installed ({@link traefikCrdFile}). */
  crd?: boolean;
  /**
   * The kubernetesCRD provider's allowEmptyServices (default here: true). Traefik's own default, false, drops a
   * weighted TraefikService whose canary Service has no endpoints, and with it every route to it (404 for all).
   */
  allowEmptyServices?: boolean;
}

/** The definitions of all of Traefik's CRDs, which scripts/provision-traefik.sh keeps next to the binary. */
export function traefikCrdFile(): string {
  const bin = process.env.TRAEFIK_BIN;
  if (!bin) throw new Error(traefikUnavailable());
  return path.join(path.dirname(bin), '..', 'crds', 'kubernetes-crd-definition-v1.yml');
}

/** Starts Traefik and waits until it answers its ping. */
export async function startTraefik(o: TraefikOptions): Promise<Traefik> {
  const bin = process.env.TRAEFIK_BIN;
  if (!bin) throw new Error(traefikUnavailable());
  const args = [
    `--entryPoints.web.address=127.0.0.1:${o.port}`,
    `--entryPoints.traefik.address=127.0.0.1:${o.adminPort}`,
    '--ping=true',
    '--api=true',
    '--api.insecure=true', // the API on the loopback admin entry point: tests read the weights the proxy carries
    '--ping.entryPoint=traefik',
    '--metrics.prometheus=true',
    '--metrics.prometheus.entryPoint=traefik',
    '--metrics.prometheus.addServicesLabels=true',
    '--metrics.prometheus.addRoutersLabels=true',
    '--providers.providersThrottleDuration=0s',
    '--providers.kubernetesGateway=true',
    '--providers.kubernetesGateway.throttleDuration=0s',
    ...(o.namespaces?.length ? [`--providers.kubernetesGateway.namespaces=${o.namespaces.join(',')}`] : []),
    '--providers.kubernetesIngressNGINX=true',
    '--providers.kubernetesIngressNGINX.throttleDuration=0s',
    // ingress-nginx's default proxy-next-upstream ("error timeout", 3 tries) becomes a retry middleware that
    // would hide a failed connection from the client: off, so the client sees every failure.
    '--providers.kubernetesIngressNGINX.proxyNextUpstream=off',
    ...(o.crd ? ['--providers.kubernetesCRD=true', '--providers.kubernetesCRD.throttleDuration=0s', `--providers.kubernetesCRD.allowEmptyServices=${o.allowEmptyServices ?? true}`] : []),
    `--log.level=${process.env.GLIDEPATH_TRAEFIK_LOG_LEVEL ?? 'WARN'}`,
    // Every answer of 500 or more in the log (JSON, with the server it came from), so a failure at the client can be traced.
    '--accesslog=true',
    '--accesslog.format=json',
    '--accesslog.filters.statuscodes=500-599',
    '--global.checkNewVersion=false',
    '--global.sendAnonymousUsage=false',
  ];
  const daemon = spawnDaemon(bin, args, { KUBECONFIG: o.kubeconfig });
  const admin = `http://127.0.0.1:${o.adminPort}`;
  const end = Date.now() + 30_000;
  for (;;) {
    if (daemon.exited()) throw new Error(`traefik exited: ${daemon.log().slice(-3000)}`);
    try {
      if ((await fetch(`${admin}/ping`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) {
      await daemon.terminate(2000);
      throw new Error(`traefik did not answer /ping in 30 s: ${daemon.log().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${o.port}`, port: o.port, adminAddress: `127.0.0.1:${o.adminPort}`, metricsUrl: `${admin}/metrics`, apiUrl: `${admin}/api`, daemon, failedRequests: () => daemon.log().split('\n').filter((l) => l.startsWith('{') && l.includes('"DownstreamStatus"')), stop: () => daemon.terminate(5000) };
}
