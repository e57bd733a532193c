/**
 * Reads release spec files (multi-document YAML) and normalises them into a plan. File and YAML
 * syntax problems are reported like schema problems: file, location, reason.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { normalize, SpecError, type NormalizeOptions, type SourceDoc, type SpecProblem } from '../spec/normalize.ts';
import type { ReleasePlan } from '../spec/types.ts';

export async function readSpecDocs(files: readonly string[]): Promise<{ docs: SourceDoc[]; problems: SpecProblem[] }> {
  const docs: SourceDoc[] = [];
  const problems: SpecProblem[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      problems.push({ source: file, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, usage: true });
      continue;
    }
    const parsed = parseAllDocuments(text, { prettyErrors: true });
    const list = Array.isArray(parsed) ? parsed : [parsed];
    list.forEach((doc, i) => {
      const source = list.length > 1 ? `${file}#${i + 1}` : file;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) {
          problems.push({ source, path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: `YAML: ${e.message.split('\n')[0]}` });
        }
        return;
      }
      docs.push({ source, doc: doc.toJS({ maxAliasCount: 100 }) });
    });
  }
  return { docs, problems };
}

/** Loads and validates; throws {@link SpecError} listing every problem. */
export async function loadPlan(files: readonly string[], options: NormalizeOptions = {}): Promise<ReleasePlan> {
  const { docs, problems } = await readSpecDocs(files);
  if (problems.length > 0) throw new SpecError(problems);
  const plan = normalize(docs, options);
  const sources = files.join(',');
  return { ...plan, source: sources };
}
