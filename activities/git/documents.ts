/**
 * The documents of a Git source at one commit: the files under its path are written to a temp dir
 * and read by the CLI's own functions (loadRelease, loadGroup, loadApiVersion), so "valid in Git"
 * means exactly what `glidepath lint` says. Problems name the file as it is in the repository.
 * Each Release/Rollout file is a release, each ReleaseGroup file a group (its member files are
 * released by it, never on their own), each ApiVersion file one version of an API.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { SpecError, formatProblem, type SpecProblem } from '../../model/normalize.ts';
import { API_VERSION_KIND, apiKey, apiWorkflowId, loadApiVersion, type ApiVersionPlan } from '../../model/api-version.ts';
import { isGroupDoc, memberFiles, parseGroup } from '../../model/group.ts';
import { groupWorkflowId, type GroupPlan } from '../../model/group-plan.ts';
import type { OtherDocument } from '../../workflows/git-source/messages.ts';
import { startProblems } from '../../model/plan.ts';
import { releaseWorkflowId, type ReleasePlan } from '../../model/types.ts';
import { loadGroup } from '../../starters/group-files.ts';
import { loadRelease, readSpecDocs } from '../../starters/spec-files.ts';
import type { GitRun } from './git-cli.ts';

/** The most YAML files read under a source's path. */
export const MAX_SOURCE_FILES = 100;
/** The most problems kept for one commit (the rest are counted). */
export const MAX_REPORTED_PROBLEMS = 20;
const MAX_FILE_BYTES = 1024 * 1024;

export interface ReleaseDoc {
  /** Path in the repository. */
  file: string;
  workflowId: string;
  service: string;
  image: string;
  /** sha256 of the normalised plan (without its source): what "the spec changed" compares. */
  specHash: string;
}

export interface CommitDocuments {
  releases: ReleaseDoc[];
  /** ReleaseGroup and ApiVersion documents: a group workflow, or an introduction on the API's workflow. */
  others: OtherDocument[];
  /** Files read that hold no Glidepath document. */
  notStarted: { file: string; reason: string }[];
  problems: string[];
  moreProblems: number;
}

export interface Materialized {
  dir: string;
  files: string[];
  cleanup(): void;
}

/** Writes the YAML files under `path` at `commit` into a temp dir; at most {@link MAX_SOURCE_FILES}. */
export async function materialize(git: GitRun, commit: string, path: string): Promise<Materialized | { problem: string }> {
  const spec = path === '.' ? [] : ['--', path];
  const { stdout } = await git(['ls-tree', '-r', '-z', '--full-tree', '--long', commit, ...spec]);
  const entries = stdout.split('\0').filter(Boolean).map((line) => {
    const [meta, name] = line.split('\t') as [string, string];
    const [mode, type, , size] = meta.split(/\s+/) as [string, string, string, string];
    return { mode, type, size: Number(size), name };
  });
  const yaml = entries.filter((e) => e.type === 'blob' && /\.ya?ml$/.test(e.name));
  if (yaml.length > MAX_SOURCE_FILES) return { problem: `${path}: holds ${yaml.length} YAML files; a source reads at most ${MAX_SOURCE_FILES}` };
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-git-docs-'));
  try {
    for (const e of yaml) {
      if (e.mode === '120000') continue; // symbolic links are not followed
      if (e.size > MAX_FILE_BYTES) return { problem: `${e.name}: is ${e.size} bytes; a spec file is at most ${MAX_FILE_BYTES} bytes` };
      const { stdout: text } = await git(['cat-file', 'blob', `${commit}:${e.name}`]);
      const at = join(dir, e.name);
      mkdirSync(dirname(at), { recursive: true });
      writeFileSync(at, text);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, files: yaml.filter((e) => e.mode !== '120000').map((e) => e.name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const sha256 = (value: unknown): string => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** The hash "the spec changed" compares: the plan as the workflow gets it, without where it came from. */
export function specHash(plan: ReleasePlan): string {
  return sha256({ ...plan, source: undefined });
}

/** A group's hash: its plan with its members' plans, none with where it came from. */
export function groupSpecHash(plan: GroupPlan): string {
  return sha256({ ...plan, source: undefined, members: plan.members.map((m) => ({ ...m, plan: { ...m.plan, source: undefined } })) });
}

/** An API version's hash: the whole plan (its `source` is `new` or `existing`, part of the spec). */
export function apiVersionSpecHash(plan: ApiVersionPlan): string {
  return sha256(plan);
}

/** Everything lintCommit read, with the plans each start needs. */
export interface LintedCommit extends CommitDocuments {
  plans: Map<string, ReleasePlan>;
  groups: Map<string, GroupPlan>;
  apiVersions: Map<string, ApiVersionPlan>;
}

function kindsOf(docs: readonly { doc: unknown }[]): Set<string> {
  return new Set(docs.map((d) => (d.doc as { kind?: unknown } | null)?.kind).filter((k): k is string => typeof k === 'string'));
}

/** Lints every file under the path: each Release/Rollout file is one release (with the templates in it). */
export async function lintCommit(m: Materialized, initiator: string): Promise<LintedCommit> {
  // Problems name files as they are in the repository, never the temp dir (absolute or relative to the worker's cwd).
  const prefixes = [`${m.dir}/`, `${relative(process.cwd(), m.dir)}/`];
  const inRepo = (text: string): string => prefixes.reduce((t, prefix) => t.split(prefix).join(''), text);
  const rel = (p: SpecProblem): SpecProblem => ({ ...p, source: inRepo(p.source), message: inRepo(p.message) });
  const problems: string[] = [];
  const notStarted: CommitDocuments['notStarted'] = [];
  const releases: ReleaseDoc[] = [];
  const plans = new Map<string, ReleasePlan>();
  const others: OtherDocument[] = [];
  const groups = new Map<string, GroupPlan>();
  const apiVersions = new Map<string, ApiVersionPlan>();
  const groupMembers = new Set<string>();
  const byWorkload = new Map<string, string>();
  const collect = (err: unknown) => {
    if (err instanceof SpecError) problems.push(...err.problems.map((p) => formatProblem(rel(p))));
    else throw err;
  };
  const read = new Map<string, { docs: { doc: unknown }[]; kinds: Set<string> }>();
  for (const file of m.files) {
    const r = await readSpecDocs([join(m.dir, file)]);
    if (r.problems.length > 0) {
      problems.push(...r.problems.map((p) => formatProblem(rel(p))));
      continue;
    }
    read.set(file, { docs: r.docs, kinds: kindsOf(r.docs) });
  }
  // Group members are released by their group, never on their own.
  for (const [file, { docs }] of read) {
    const group = docs.find((d) => isGroupDoc(d.doc));
    if (!group) continue;
    try {
      for (const files of memberFiles(parseGroup(file, group.doc)).values()) for (const f of files) groupMembers.add(posix.normalize(posix.join(posix.dirname(file), f)));
    } catch (err) {
      collect(err);
    }
  }
  for (const [file, { docs, kinds }] of read) {
    const abs = join(m.dir, file);
    try {
      if (kinds.has(API_VERSION_KIND)) {
        const plan = loadApiVersion(docs as never);
        const name = `${apiKey(plan)} ${plan.version}`;
        const other = others.find((o) => o.kind === 'apiVersion' && o.name === name);
        if (other) {
          problems.push(`${file}: introduces ${name}, as ${other.file} does; one file per API version`);
          continue;
        }
        apiVersions.set(file, plan);
        others.push({ kind: 'apiVersion', file, workflowId: apiWorkflowId(plan), name, specHash: apiVersionSpecHash(plan) });
      } else if (docs.some((d) => isGroupDoc(d.doc))) {
        const loaded = await loadGroup(abs);
        // Member sources name files as they are in the repository (they are shown by the releases it starts).
        const plan: GroupPlan = { ...loaded, members: loaded.members.map((x) => ({ ...x, plan: { ...x.plan, ...(x.plan.source ? { source: inRepo(x.plan.source) } : {}) } })) };
        const workflowId = groupWorkflowId(plan);
        const other = others.find((o) => o.workflowId === workflowId);
        if (other) {
          problems.push(`${file}: is group ${plan.namespace}/${plan.name}, as ${other.file} is (${workflowId}); one file per group`);
          continue;
        }
        groups.set(file, plan);
        others.push({ kind: 'group', file, workflowId, name: `${plan.namespace}/${plan.name}`, specHash: groupSpecHash(plan) });
      } else if (kinds.has('Release') || kinds.has('Rollout')) {
        if (groupMembers.has(file)) continue;
        const { plan } = await loadRelease([abs]);
        const refused = startProblems(plan, initiator);
        if (refused.length > 0) {
          problems.push(...refused.map((r) => `${file}: ${r}`));
          continue;
        }
        const workflowId = releaseWorkflowId(plan);
        const other = byWorkload.get(workflowId);
        if (other) {
          problems.push(`${file}: releases the same workload as ${other} (${workflowId}); one file per workload`);
          continue;
        }
        byWorkload.set(workflowId, file);
        plans.set(file, plan);
        releases.push({ file, workflowId, service: `${plan.namespace}/${plan.name}`, image: plan.image, specHash: specHash(plan) });
      } else if (!groupMembers.has(file)) {
        notStarted.push({ file, reason: 'no Release, Rollout, ReleaseGroup or ApiVersion document' });
      }
    } catch (err) {
      collect(err);
    }
  }
  return {
    releases,
    others,
    notStarted: notStarted.slice(0, MAX_SOURCE_FILES),
    problems: problems.slice(0, MAX_REPORTED_PROBLEMS),
    moreProblems: Math.max(0, problems.length - MAX_REPORTED_PROBLEMS),
    plans,
    groups,
    apiVersions,
  };
}
