/**
 * Reads release spec files (multi-document YAML) and normalises them into a plan. File and YAML
 * syntax problems are reported like schema problems: file, location, reason.
 */
import { open } from 'node:fs/promises';
import { Composer, LineCounter, Parser, isCollection, isPair, isScalar, isSeq, visit, type Document } from 'yaml';
import { formatProblem, normalizeFiles, SpecError, type NormalizedFiles, type NormalizeOptions, type SourceDoc, type SpecProblem } from '../model/normalize.ts';
import { planProblems } from '../model/plan.ts';
import type { ReleasePlan } from '../model/types.ts';

/** The largest spec file read (a release with its templates is a few KiB). */
export const MAX_SPEC_FILE_BYTES = 1024 * 1024;
/** The most YAML documents read over all files of one invocation. */
export const MAX_SPEC_DOCUMENTS = 200;
/** The most problems printed; the rest are counted ("… and N more"). */
export const MAX_PRINTED_PROBLEMS = 50;

/** Problems as lines, at most {@link MAX_PRINTED_PROBLEMS}, then "… and N more". */
export function formatProblemList(problems: readonly SpecProblem[], max = MAX_PRINTED_PROBLEMS): string {
  const lines = problems.slice(0, max).map(formatProblem);
  if (problems.length > max) lines.push(`… and ${problems.length - max} more`);
  return lines.join('\n');
}

/** The file's text, or a problem when it cannot be read or exceeds {@link MAX_SPEC_FILE_BYTES}. */
async function readBounded(file: string): Promise<string | SpecProblem> {
  let handle;
  try {
    handle = await open(file, 'r');
    const { size } = await handle.stat();
    if (size > MAX_SPEC_FILE_BYTES) return { source: file, path: '', message: `is ${size} bytes; a spec file is at most ${MAX_SPEC_FILE_BYTES} bytes` };
    // Read at most one byte past the cap: a file that grows (or a device) is still bounded.
    const buf = Buffer.alloc(MAX_SPEC_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_SPEC_FILE_BYTES) return { source: file, path: '', message: `is more than ${MAX_SPEC_FILE_BYTES} bytes; a spec file is at most ${MAX_SPEC_FILE_BYTES} bytes` };
    }
    return buf.subarray(0, length).toString('utf8');
  } catch (err) {
    return { source: file, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, usage: true };
  } finally {
    await handle?.close();
  }
}

/** The field path of a node from its ancestors (Document, maps, pairs, sequences), as the user wrote it. */
function yamlPath(ancestors: readonly unknown[], node: unknown): string {
  let out = '';
  ancestors.forEach((a, i) => {
    const next = i + 1 < ancestors.length ? ancestors[i + 1] : node;
    if (isPair(a)) out += `${out === '' ? '' : '.'}${isScalar(a.key) ? String(a.key.value) : '?'}`;
    else if (isSeq(a)) out += `[${a.items.indexOf(next as never)}]`;
  });
  return out;
}

/**
 * A mapping key that is itself a mapping or sequence: an unquoted `{{args.x}}` is YAML flow syntax
 * (a mapping inside a mapping), not text. Reported by name instead of letting the YAML library
 * stringify the key with a process warning.
 */
function collectionKeyProblems(source: string, doc: Document.Parsed, lines: LineCounter, text: string): SpecProblem[] {
  const problems: SpecProblem[] = [];
  visit(doc, {
    Pair(_, pair, ancestors) {
      if (!isCollection(pair.key)) return;
      // The mapping that holds the pair is what the user wrote, e.g. `{{args.x}}`.
      const holder = ancestors.at(-1) as { range?: [number, number, number] | null } | undefined;
      const range = holder?.range ?? pair.key.range;
      const line = range ? lines.linePos(range[0]).line : 0;
      const written = range ? text.slice(range[0], range[1]).trim().slice(0, 80) : '';
      problems.push({
        source,
        path: yamlPath(ancestors.slice(0, -1), holder) || `line ${line}`,
        message: `YAML key with a collection value at line ${line} (${JSON.stringify(written)}): an unquoted {{args.x}} is YAML flow syntax (a mapping), not text; quote it: "${written.replace(/"/g, '')}"`,
      });
      return visit.SKIP;
    },
  });
  return problems;
}

export async function readSpecDocs(files: readonly string[]): Promise<{ docs: SourceDoc[]; problems: SpecProblem[] }> {
  const docs: SourceDoc[] = [];
  const problems: SpecProblem[] = [];
  let documents = 0;
  for (const file of files) {
    const text = await readBounded(file);
    if (typeof text !== 'string') {
      problems.push(text);
      continue;
    }
    // Documents are composed one at a time, so reading stops at the cap instead of parsing them all.
    const lines = new LineCounter();
    const list: Document.Parsed[] = [];
    for (const doc of new Composer().compose(new Parser(lines.addNewLine).parse(text))) {
      list.push(doc);
      if (documents + list.length > MAX_SPEC_DOCUMENTS) break;
    }
    documents += list.length;
    if (documents > MAX_SPEC_DOCUMENTS) {
      problems.push({ source: file, path: '', message: `holds more than ${MAX_SPEC_DOCUMENTS} YAML documents; at most ${MAX_SPEC_DOCUMENTS} are read over all files` });
      break;
    }
    list.forEach((doc, i) => {
      const source = list.length > 1 ? `${file}#${i + 1}` : file;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) {
          problems.push({ source, path: `line ${lines.linePos(e.pos[0]).line}`, message: `YAML: ${e.message.split('\n')[0]}` });
        }
        return;
      }
      const keyProblems = collectionKeyProblems(source, doc, lines, text);
      if (keyProblems.length > 0) {
        problems.push(...keyProblems);
        return;
      }
      docs.push({ source, doc: doc.toJS({ maxAliasCount: 100 }) });
    });
  }
  return { docs, problems };
}

/** Loads and validates; throws {@link SpecError} listing every problem. */
export async function loadPlan(files: readonly string[], options: NormalizeOptions = {}): Promise<ReleasePlan> {
  return (await loadRelease(files, options)).plan;
}

/** {@link loadPlan}, also returning the files' other Kubernetes objects (model/documents.ts). */
export async function loadRelease(files: readonly string[], options: NormalizeOptions = {}): Promise<NormalizedFiles> {
  const { docs, problems } = await readSpecDocs(files);
  if (problems.length > 0) throw new SpecError(problems);
  const { plan, workloadDocument, others } = normalizeFiles(docs, options);
  const sources = files.join(',');
  const full = { ...plan, source: sources };
  // Exactly the check the workflow makes when it starts: lint's "valid" means the workflow accepts it.
  const refused = planProblems(full);
  if (refused.length > 0) {
    throw new SpecError(refused.map((line) => {
      const at = line.indexOf(': ');
      return { source: sources, path: `plan ${at > 0 ? line.slice(0, at) : ''}`.trim(), message: `${at > 0 ? line.slice(at + 2) : line} (refused by the workflow's start-time check)` };
    }));
  }
  return { plan: full, ...(workloadDocument ? { workloadDocument } : {}), others };
}
