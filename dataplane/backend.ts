/**
 * The pods' server, run inside the data plane's network namespace (`ip netns exec <ns> node backend.ts
 * <port>…`) with an IPC channel to the process that started it. It answers every request with the version
 * (image tag) of the pod whose IP the request reached: body `<version>\n`, headers `x-version` and `x-pod`.
 * A request to an address that is no pod's (any more) is reset, as a closed port would refuse it (after up to
 * 1 s: a pod kwok has just made Ready may reach the proxy a moment before its watch event reaches here).
 * Messages from the parent:
 *   { pods: { [ip]: { version, pod } } }  the pods now served (replaces the previous map)
 *   { fail: { [version]: share } }        that share (0..1) of the version's requests answer 500, evenly spread
 * It sends { ready: true } once listening. Started by dataplane/index.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

interface PodInfo {
  version: string;
  pod: string;
}

const UNKNOWN_WAIT_MS = 1000;
let pods = new Map<string, PodInfo>();
let failShare = new Map<string, number>();
/** Per version: failures owed (an accumulator, so a share of 0.1 fails exactly every 10th request). */
const owed = new Map<string, number>();

const localIp = (addr: string | undefined): string => (addr ?? '').replace(/^::ffff:/, '');

function shouldFail(version: string): boolean {
  const share = failShare.get(version) ?? 0;
  if (share <= 0) return false;
  const next = (owed.get(version) ?? 0) + share;
  if (next >= 1 - 1e-9) {
    owed.set(version, next - 1);
    return true;
  }
  owed.set(version, next);
  return false;
}

/** Requests that reached an IP the watch has not reported yet, waiting for it (kwok gives a pod its IP and Ready at once). */
const waiting = new Set<() => void>();

function answer(req: IncomingMessage, res: ServerResponse, pod: PodInfo): void {
  req.resume();
  const fail = shouldFail(pod.version);
  res.writeHead(fail ? 500 : 200, { 'content-type': 'text/plain', 'x-version': pod.version, 'x-pod': pod.pod });
  res.end(`${pod.version}\n`);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const ip = localIp(req.socket.localAddress);
  const pod = pods.get(ip);
  if (pod) return answer(req, res, pod);
  // A pod that is Ready in the apiserver may reach the proxy a moment before its watch event reaches here:
  // wait for it up to UNKNOWN_WAIT_MS, as its container would already be listening. No pod by then: reset.
  const timer = setTimeout(() => {
    waiting.delete(check);
    req.socket.resetAndDestroy();
  }, UNKNOWN_WAIT_MS);
  const check = (): void => {
    const p = pods.get(ip);
    if (!p) return;
    clearTimeout(timer);
    waiting.delete(check);
    answer(req, res, p);
  };
  waiting.add(check);
}

function serve(port: number): Promise<Server> {
  const server = createServer({ noDelay: true }, handle);
  // Longer than any proxy's idle timeout for upstream connections (Traefik: 90 s), so a proxy never
  // reuses a connection this side is closing.
  server.keepAliveTimeout = 300_000;
  server.headersTimeout = 301_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}

process.on('message', (msg: { pods?: Record<string, PodInfo>; fail?: Record<string, number> }) => {
  if (msg.pods) {
    pods = new Map(Object.entries(msg.pods));
    for (const check of [...waiting]) check();
  }
  if (msg.fail) {
    failShare = new Map(Object.entries(msg.fail));
    owed.clear();
  }
});
process.on('disconnect', () => process.exit(0));

const ports = process.argv.slice(2).map(Number);
await Promise.all((ports.length > 0 ? ports : [80]).map(serve));
process.send?.({ ready: true });
