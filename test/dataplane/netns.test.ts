/**
 * The data plane's machine-wide lock (dataplane/netns.ts): while one run holds a data plane, another
 * waits and then fails naming the lock; the lock goes with its holder however that ends (a SIGKILLed holder's
 * lock is free at once, and its namespace is removed by the next run); closing removes namespace and guard.
 * Needs root and iproute2; skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createNetNs, GUARD_CIDR, netnsUnavailable } from '../../dataplane/netns.ts';

const skip = netnsUnavailable();
const netnsModule = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dataplane', 'netns.ts');
const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);

describe('data-plane lock', { skip }, () => {
  test('a second data plane waits for the first and fails naming the lock; after close the next one starts', async () => {
    const first = await createNetNs();
    try {
      assert.ok(namespaces().includes(first.name));
      await assert.rejects(createNetNs({ lockTimeoutMs: 1000 }), /another data plane holds \/run\/glidepath-dataplane\.lock/);
    } finally {
      first.close();
    }
    assert.ok(!namespaces().includes(first.name), 'the namespace is gone after close');
    assert.equal(execFileSync('ip', ['route', 'show', 'exact', GUARD_CIDR], { encoding: 'utf8' }).trim(), '', 'the guard route is gone after close');
    const second = await createNetNs({ lockTimeoutMs: 5000 });
    second.close();
  });

  test('a holder killed with SIGKILL leaves no lock: the next data plane starts at once and removes its namespace', async () => {
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `const { createNetNs } = await import(${JSON.stringify(netnsModule)}); const n = await createNetNs(); console.log(n.name); setInterval(() => {}, 1000);`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const name = await new Promise<string>((resolve, reject) => {
      holder.stdout.setEncoding('utf8').once('data', (d: string) => resolve(d.trim()));
      holder.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    holder.kill('SIGKILL'); // no exit handler runs: namespace, guard and lock holder are left as they were
    await new Promise((r) => holder.once('exit', r));
    assert.ok(namespaces().includes(name), 'the killed run left its namespace');
    const t0 = Date.now();
    const next = await createNetNs({ lockTimeoutMs: 3000 });
    try {
      assert.ok(Date.now() - t0 < 2000, `the lock was free at once (${Date.now() - t0} ms)`);
      assert.ok(!namespaces().includes(name), 'the killed run’s namespace was removed');
    } finally {
      next.close();
    }
  });
});
