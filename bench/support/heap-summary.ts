/**
 * What a heap snapshot holds, by kind of object, and what a second snapshot added to the first:
 *
 *   node bench/support/heap-summary.ts AFTER.heapsnapshot                  the top kinds by self size
 *   node bench/support/heap-summary.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--per N] [--top K]
 *                                                                        the top kinds by size added, per N (e.g. releases)
 *
 * A kind is the node's type and name (an object's constructor, a closure's function name, `string`
 * for every string, `code`/`hidden`/`array` by V8's internal name). Self sizes only: what retains
 * what is a question for a heap viewer, this answers where the bytes are. Snapshots from
 * `BENCH_SNAPSHOT_DIR` (bench/inflight-real.ts), `MEM_SNAPSHOT_DIR` (test/workers/workflow-memory.test.ts)
 * or `v8.writeHeapSnapshot()`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}
interface Kind {
  count: number;
  bytes: number;
}

/** Self size and count per kind (type and name) of every node of the snapshot file. */
export function kinds(file: string): Map<string, Kind> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const [typeNames] = snap.snapshot.meta.node_types;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const out = new Map<string, Kind>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = typeNames[snap.nodes[i + typeAt]!] ?? '?';
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' ? '' : snap.strings[snap.nodes[i + nameAt]!]!.slice(0, 60);
    const key = `${type} ${name}`.trim();
    const kind = out.get(key) ?? { count: 0, bytes: 0 };
    kind.count++;
    kind.bytes += snap.nodes[i + sizeAt]!;
    out.set(key, kind);
  }
  return out;
}

/** after − before per kind, largest first; a single snapshot is after − nothing. */
export function added(before: Map<string, Kind>, after: Map<string, Kind>): Array<[string, Kind]> {
  return [...after].map(([key, a]): [string, Kind] => [key, { count: a.count - (before.get(key)?.count ?? 0), bytes: a.bytes - (before.get(key)?.bytes ?? 0) }]).sort((x, y) => y[1].bytes - x[1].bytes);
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string', default: '1' }, top: { type: 'string', default: '40' } } });
  const per = Number(values.per);
  const top = Number(values.top);
  if (positionals.length < 1 || positionals.length > 2) throw new Error('usage: heap-summary.ts [BEFORE.heapsnapshot] AFTER.heapsnapshot [--per N] [--top K]');
  if (!(per > 0) || !Number.isInteger(top) || top < 1) throw new Error(`--per must be a positive number (got ${values.per}) and --top a positive whole number (got ${values.top})`);
  const after = kinds(positionals.at(-1)!);
  const before = positionals.length === 2 ? kinds(positionals[0]!) : new Map<string, Kind>();
  const rows = added(before, after);
  const total = rows.reduce((s, [, k]) => s + k.bytes, 0);
  console.log(`${positionals.length === 2 ? 'added' : 'held'}: ${(total / 1024).toFixed(0)} KiB in all, ${(total / per / 1024).toFixed(1)} KiB per ${per === 1 ? 'snapshot' : `one of ${per}`}`);
  for (const [key, k] of rows.slice(0, top)) console.log(`${(k.bytes / per / 1024).toFixed(2).padStart(9)} KiB ${(k.count / per).toFixed(1).padStart(8)} × ${key}`);
}

if (import.meta.main) main();
