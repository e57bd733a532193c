/** freePort: below the kernel's ephemeral range (no outgoing connection can take it), bindable, never handed out twice. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from './daemon.ts';

test('freePort: 100 ports below the ephemeral range, all different, each claimed by this process and bindable', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports: number[] = [];
  for (let i = 0; i < 100; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, 100, 'no port handed out twice');
  for (const port of ports) {
    assert.ok(port >= 20_000 && port < low, `${port} is below the ephemeral range (${low})`);
    const claim = path.join(os.tmpdir(), 'glidepath-test-ports', String(port));
    assert.ok(existsSync(claim), `claim file for ${port}`);
    assert.equal(readFileSync(claim, 'utf8'), String(process.pid));
  }
  const port = ports[0] as number;
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => srv.close(() => resolve()));
});
