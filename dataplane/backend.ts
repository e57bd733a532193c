/**
 * The pods' server, run inside the data plane's network namespace (`ip netns exec <ns> node backend.ts
 * <port>…`) with an IPC channel to the process that started it. It answers every request with the version
 * (image tag) of the pod whose IP the request reached: body `<version>\n`, headers `x-version` and `x-pod`.
 * A request to an address that is no pod's (any more) is reset, as a closed port would refuse it (after up to
 * 1 s: a pod kwok has just made Ready may reach the proxy a moment before its watch event reaches here).
 * A port given as `h2c:<port>` serves HTTP/2 without TLS (h2c) and answers every request as a gRPC unary
 * call: one message holding the version's bytes, headers `x-version` and `x-pod`, trailer `grpc-status: 0`
 * (`13`, INTERNAL, for the failing share below); to an unknown address the connection is destroyed.
 * Messages from the parent:
 *   { pods: { [ip]: { version, pod } } }  the pods now served (replaces the previous map)
 *   { fail: { [version]: share } }        that share (0..1) of the version's requests answer 500, evenly spread
 * It sends { ready: true } once listening. Started by dataplane/index.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';

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

/** Calls `serve` with the pod at `ip`, waiting for it up to UNKNOWN_WAIT_MS; `refuse` when none comes. */
function withPod(ip: string, serve: (pod: PodInfo) => void, refuse: () => void): void {
  const pod = pods.get(ip);
  if (pod) return serve(pod);
  // A pod that is Ready in the apiserver may reach the proxy a moment before its watch event reaches here:
  // wait for it up to UNKNOWN_WAIT_MS, as its container would already be listening. No pod by then: refuse.
  const timer = setTimeout(() => {
    waiting.delete(check);
    refuse();
  }, UNKNOWN_WAIT_MS);
  const check = (): void => {
    const p = pods.get(ip);
    if (!p) return;
    clearTimeout(timer);
    waiting.delete(check);
    serve(p);
  };
  waiting.add(check);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  withPod(localIp(req.socket.localAddress), (pod) => answer(req, res, pod), () => req.socket.resetAndDestroy());
}

/** A gRPC unary answer on an h2c stream: the version as the one length-prefixed message, then the status trailer. */
function answerGrpc(stream: ServerHttp2Stream, pod: PodInfo): void {
  stream.resume();
  if (stream.destroyed) return;
  const fail = shouldFail(pod.version);
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-version': pod.version, 'x-pod': pod.pod }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers(fail ? { 'grpc-status': '13', 'grpc-message': 'failing on purpose' } : { 'grpc-status': '0' }));
  if (fail) return void stream.end();
  const body = Buffer.from(pod.version);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1); // byte 0: not compressed
  body.copy(frame, 5);
  stream.end(frame);
}

function serveH2c(port: number): Promise<Http2Server> {
  const server = createH2cServer();
  server.on('stream', (stream) => withPod(localIp(stream.session?.socket.localAddress), (pod) => answerGrpc(stream, pod), () => stream.session?.socket.destroy()));
  server.on('sessionError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
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

const args = process.argv.slice(2);
const ports = args.filter((a) => !a.startsWith('h2c:')).map(Number);
const h2cPorts = args.filter((a) => a.startsWith('h2c:')).map((a) => Number(a.slice(4)));
await Promise.all([...(ports.length > 0 ? ports : [80]).map(serve), ...h2cPorts.map(serveH2c)]);
process.send?.({ ready: true });
