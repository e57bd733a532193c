/**
 * Freeze windows (model/freeze.ts) resolved for the release workflow: the release's own windows and
 * the worker's policy file, as absolute intervals (a local activity: its answer is recorded, so the
 * workflow stays deterministic while zone rules live here).
 *   GLIDEPATH_FREEZE_POLICY_FILE   YAML (or JSON) {windows: [...], overriders: [...]}; each window may be
 *                                  scoped by `namespaces` and `workloads` (namespace/name); unset: none
 * The operator sets it; a spec cannot. A malformed file throws at worker start, naming the field.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { resolveFreeze, type FreezePolicyFile, type FreezeSpec, type ResolvedFreeze } from '../model/freeze.ts';
import { freezePolicyFileSchema } from '../model/freeze-schema.ts';

export const FREEZE_POLICY_FILE_ENV = 'GLIDEPATH_FREEZE_POLICY_FILE';

/** Problems of a policy document, each naming its field (empty when valid). */
export function freezePolicyProblems(doc: unknown): string[] {
  const parsed = freezePolicyFileSchema.safeParse(doc);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${FREEZE_POLICY_FILE_ENV}: ${i.path.map(String).join('.') || '(file)'}: ${i.message}`);
}

/** The policy named by the environment, undefined when the variable is unset; throws naming the variable and field. */
export function freezePolicyFromEnv(env: NodeJS.ProcessEnv): FreezePolicyFile | undefined {
  const file = env[FREEZE_POLICY_FILE_ENV];
  if (!file) return undefined;
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${FREEZE_POLICY_FILE_ENV} ${file} ${code ? `cannot be read: ${code}` : `is not YAML: ${(err as Error).message.split('\n')[0]}`}`, { cause: err });
  }
  const problems = freezePolicyProblems(doc);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return freezePolicyFileSchema.parse(doc) as FreezePolicyFile;
}

/** The activity the workflow calls (local) at start and past each horizon. */
export function createFreezeActivities(policy: FreezePolicyFile | undefined) {
  return {
    async freezeWindows(release: FreezeSpec | null, scope: { namespace: string; workload: string }, fromMs: number): Promise<ResolvedFreeze> {
      return resolveFreeze(release ?? undefined, policy, scope, fromMs);
    },
  };
}
