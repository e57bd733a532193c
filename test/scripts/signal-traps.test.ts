/**
 * The scripts that stop what they started on a signal (scripts/demo.sh, scripts/demo-fleet.sh) must
 * not be cut short by a second signal. npm forwards the SIGINT a Ctrl-C also sends to the process
 * group, so the script gets two; one landing after `exit` but before the EXIT trap's first line ran
 * `exit` again from inside the EXIT trap, and the servers kept running (CI's demo SIGINT test, once).
 * Each signal trap that exits must ignore INT and TERM first; and with the scripts' own trap lines, a
 * script given two signals in a row still runs its cleanup to the end.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { root } from '../e2e/support.ts';

const IGNORE_FIRST = 'trap "" INT TERM;';

/** Each `trap '<command>' INT|TERM` line of a script in scripts/ whose command exits. */
async function exitingSignalTraps(): Promise<{ file: string; line: string; command: string }[]> {
  const found: { file: string; line: string; command: string }[] = [];
  for (const file of (await readdir(path.join(root, 'scripts'))).filter((f) => f.endsWith('.sh'))) {
    for (const line of (await readFile(path.join(root, 'scripts', file), 'utf8')).split('\n')) {
      const m = /^\s*trap '([^']*)' (INT|TERM)\b/.exec(line);
      if (m && /\bexit\b/.test(m[1]!)) found.push({ file, line: line.trim(), command: m[1]! });
    }
  }
  return found;
}

test('every signal trap that exits ignores INT and TERM before it exits', async () => {
  const traps = await exitingSignalTraps();
  assert.deepEqual([...new Set(traps.map((t) => t.file))].sort(), ['demo-fleet.sh', 'demo.sh'], 'the scripts with such traps');
  assert.deepEqual(traps.filter((t) => !t.command.startsWith(IGNORE_FIRST)).map((t) => `${t.file}: ${t.line}`), []);
});

test('with demo.sh\'s trap lines, two SIGINTs in a row still run the cleanup to its end', async () => {
  const traps = (await exitingSignalTraps()).filter((t) => t.file === 'demo.sh').map((t) => t.line);
  assert.equal(traps.length, 2, traps.join('\n'));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-traps-'));
  try {
    const script = [...traps, `stop_all() { trap '' INT TERM; sleep 0.2; echo done > "$OUT"; }`, 'trap stop_all EXIT', 'echo ready', 'while :; do sleep 1 & wait $! || true; done'].join('\n');
    for (let i = 0; i < 10; i++) {
      const out = path.join(dir, `out-${i}`);
      const child = spawn('bash', ['-c', script], { env: { ...process.env, OUT: out }, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      process.kill(-child.pid!, 'SIGINT'); // Ctrl-C: the group
      if (i % 2 === 1) await new Promise((r) => setTimeout(r, 1));
      process.kill(child.pid!, 'SIGINT'); // npm's forward
      assert.equal(await exited, 130, `run ${i}: exits 130`);
      assert.ok(existsSync(out), `run ${i}: the cleanup ran to its end`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
