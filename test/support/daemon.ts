/** A server process for tests (buildkitd, docker-registry): dataplane/daemon.ts; and a free loopback port for it. */
import { randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export { spawnDaemon, type Daemon } from '../../dataplane/daemon.ts';

/** Ports handed out by {@link freePort}, one file each, shared by every test process of the machine. */
const CLAIMS = path.join(os.tmpdir(), 'glidepath-test-ports');
/** A claim older than this is stale (its test has long ended): the port may be handed out again. */
const CLAIM_TTL_MS = 3_600_000;
const LOWEST = 20_000;

/** The first port the kernel picks for outgoing connections and `listen(0)` (Linux: 32768 by default). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Claims `port` for this process unless another test process holds a fresh claim on it. */
function claim(port: number): boolean {
  const file = path.join(CLAIMS, String(port));
  try {
    if (Date.now() - statSync(file).mtimeMs < CLAIM_TTL_MS) return false;
    rmSync(file, { force: true });
  } catch {
    // no claim yet
  }
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    return false; // claimed by another process in between
  }
}

/**
 * A TCP port free on 127.0.0.1 for a server the caller starts later (often another process). Drawn
 * below the kernel's ephemeral range, so no outgoing connection can take it in the meantime (a port
 * from `listen(0)` can: Prometheus once failed "address already in use" on one under load), and
 * claimed in a file so two test processes are never given the same one within an hour.
 */
export async function freePort(): Promise<number> {
  mkdirSync(CLAIMS, { recursive: true });
  const highest = ephemeralLow() - 1;
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = randomInt(LOWEST, highest + 1);
    if (claim(port) && (await bindable(port))) return port;
  }
  throw new Error(`freePort: no free port in ${LOWEST}-${highest} after 500 tries (claims in ${CLAIMS})`);
}

/**
 * `count` consecutive ports, claimed as {@link freePort} claims them, with no TCP socket listening on
 * any of them now; synchronous, for environments built before anything awaits (a worker's metrics
 * ports). Listeners are read from /proc/net/tcp and tcp6, so a server that did not claim its port
 * (a process left from an earlier suite) is seen too. Returns the first port.
 */
export function freePortsNow(count: number): number {
  mkdirSync(CLAIMS, { recursive: true });
  const highest = ephemeralLow() - count;
  const listening = listeningPorts();
  for (let attempt = 0; attempt < 500; attempt++) {
    const first = randomInt(LOWEST, highest + 1);
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((p) => listening.has(p))) continue;
    const claimed = ports.filter((p) => claim(p));
    if (claimed.length === count) return first;
    for (const p of claimed) rmSync(path.join(CLAIMS, String(p)), { force: true });
  }
  throw new Error(`freePortsNow: no ${count} free consecutive ports in ${LOWEST}-${highest + count - 1} after 500 tries (claims in ${CLAIMS})`);
}

/** Local ports of the TCP sockets listening on this machine's network namespace (state 0A in /proc/net/tcp*). */
export function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6, or not Linux
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local) ports.add(parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}
