/** freePort and freePortsNow: below the kernel's ephemeral range (no outgoing connection can take it), bindable, never handed out twice. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort, freePortsNow, listeningPorts } from './daemon.ts';

/** The first port of the kernel's ephemeral range. */
const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
const claimPath = (port: number) => path.join(os.tmpdir(), 'glidepath-test-ports', String(port));
const claimOwner = (port: number) => readFileSync(claimPath(port), 'utf8');

function listen(port: number, host: string): Promise<Server> {
  const srv = createServer();
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve(srv));
  });
}

const close = (srv: Server) => new Promise<void>((resolve) => srv.close(() => resolve()));

test('listeningPorts: sees a listener on 127.0.0.1 and one on ::1, and not after they close', async () => {
  const v4 = await listen(await freePort(), '127.0.0.1');
  const v6 = await listen(await freePort(), '::1');
  const [p4, p6] = [(v4.address() as AddressInfo).port, (v6.address() as AddressInfo).port];
  const seen = listeningPorts();
  assert.ok(seen.has(p4), `listener on 127.0.0.1:${p4} seen`);
  assert.ok(seen.has(p6), `listener on [::1]:${p6} seen`);
  await Promise.all([close(v4), close(v6)]);
  const after = listeningPorts();
  assert.ok(!after.has(p4) && !after.has(p6), 'closed listeners gone');
});

test('freePortsNow: 50 pairs of consecutive ports, none listening, all different, claimed by this process; the first four bindable', async () => {
  const ports = Array.from({ length: 50 }, () => freePortsNow(2)).flatMap((p) => [p, p + 1]);
  assert.equal(new Set(ports).size, 100, 'no port handed out twice');
  const listening = listeningPorts();
  for (const port of ports) {
    assert.ok(port >= 20_000 && port < low, `${port} is below the ephemeral range (${low})`);
    assert.ok(!listening.has(port), `${port} has no listener`);
    assert.equal(claimOwner(port), String(process.pid), `claim file for ${port}`);
  }
  for (const port of ports.slice(0, 4)) await close(await listen(port, '127.0.0.1'));
});

test('freePort: 100 ports below the ephemeral range, all different, each claimed by this process and bindable', async () => {
  const ports: number[] = [];
  for (let i = 0; i < 100; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, 100, 'no port handed out twice');
  for (const port of ports) {
    assert.ok(port >= 20_000 && port < low, `${port} is below the ephemeral range (${low})`);
    assert.ok(existsSync(claimPath(port)), `claim file for ${port}`);
    assert.equal(claimOwner(port), String(process.pid));
  }
  await close(await listen(ports[0] as number, '127.0.0.1'));
});
