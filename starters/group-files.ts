/**
 * Reads a `ReleaseGroup` file and the member files it names (relative to the group file) and builds
 * the group plan; every problem (file, YAML, schema, member, start-time check) is reported at once.
 */
import path from 'node:path';
import { SpecError, type SourceDoc } from '../model/normalize.ts';
import { buildGroup, isGroupDoc, memberFiles, parseGroup } from '../model/group.ts';
import type { GroupPlan } from '../model/group-plan.ts';
import { readSpecDocs } from './spec-files.ts';

export async function loadGroup(file: string): Promise<GroupPlan> {
  const { docs, problems } = await readSpecDocs([file]);
  if (problems.length > 0) throw new SpecError(problems);
  const groups = docs.filter((d) => isGroupDoc(d.doc));
  if (groups.length !== 1 || docs.length !== 1) {
    throw new SpecError([{ source: file, path: '', message: groups.length === 0 ? 'no ReleaseGroup document found' : 'a group file holds exactly one ReleaseGroup document (members go in their own files or inline)' }]);
  }
  const group = groups[0] as SourceDoc;
  const doc = parseGroup(group.source, group.doc);
  const dir = path.dirname(file);
  const read = new Map<string, SourceDoc[]>();
  const fileProblems = [];
  for (const [member, files] of memberFiles(doc)) {
    const r = await readSpecDocs(files.map((f) => path.resolve(dir, f)).map((f) => path.relative(process.cwd(), f) || f));
    fileProblems.push(...r.problems);
    read.set(member, r.docs);
  }
  if (fileProblems.length > 0) throw new SpecError(fileProblems);
  return buildGroup(group.source, doc, read);
}
