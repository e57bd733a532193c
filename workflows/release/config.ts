/**
 * `spec.config` in the release (model/config.ts): at the start of each attempt, after preflight,
 * an activity copies each source ConfigMap/Secret to its content-hashed copy and the target is
 * pointed at the copies (the canary/preview template uses them; promotion moves the stable to
 * them; abort and rollback leave or put the stable back on the copies it used). When the release
 * ends (after its retry window, if it did not promote), the copies no Deployment of the workload
 * uses any more are deleted. Only names and hashes pass through here, never values.
 *
 * Releases started before CONFIG_PATCH issue no config commands; plans without `config` none either.
 */
import { describeRef, type ConfigCopy } from '../../model/config.ts';
import { describeError } from './describe.ts';
import type { ReleaseState } from './state.ts';
import { releasePatched } from './patch-epoch.ts';

/** Marks releases that copy `config` at each attempt and collect unused copies at the end. */
export const CONFIG_PATCH = 'glidepath-release-config';

/** Copies remembered for the final cleanup (each attempt adds at most one new copy per source). */
export const CONFIG_CANDIDATES_KEPT = 64;

export class ReleaseConfig {
  private readonly r: ReleaseState;
  /** Every copy this release made and every copy the stable used at an attempt's start (bounded, oldest dropped). */
  private readonly candidates: ConfigCopy[] = [];

  constructor(r: ReleaseState) {
    this.r = r;
  }

  /** The copies for this attempt, made and verified; the target points at them. A bad reference fails the attempt before anything is touched. */
  async prepare(): Promise<void> {
    const { r } = this;
    const refs = r.plan.config ?? [];
    r.setPhase('Progressing', `copying config: ${refs.map(describeRef).join(', ')}`);
    const { copies } = await r.quick.prepareConfig(r.target, refs);
    r.target.config = copies;
    for (const c of copies) {
      if (!this.candidates.some((k) => k.kind === c.kind && k.copy === c.copy && k.stable === c.stable)) this.candidates.push(c);
    }
    if (this.candidates.length > CONFIG_CANDIDATES_KEPT) this.candidates.splice(0, this.candidates.length - CONFIG_CANDIDATES_KEPT);
    r.audit('glidepath', 'config', true, undefined, copies.map((c) => `${describeRef(c)} as ${c.copy}${c.stable && c.stable !== c.copy ? ` (stable uses ${c.stable})` : ''}`).join(', '));
  }

  /** At the end: copies no Deployment of the workload uses are deleted; a failure is audited, the outcome stands. */
  async collect(): Promise<void> {
    const { r } = this;
    if (this.candidates.length === 0) return;
    try {
      const { deleted } = await r.quick.collectConfig(r.target, this.candidates);
      r.audit('glidepath', 'config-collected', true, undefined, deleted.length ? `deleted ${deleted.join(', ')}` : 'no unused copies');
    } catch (err) {
      r.audit('glidepath', 'config-collected', false, describeError(err));
    }
  }
}

/** The release's config room when its plan has `config` (and it started with CONFIG_PATCH). */
export function configFor(r: ReleaseState): ReleaseConfig | undefined {
  if (!r.plan.config?.length || !releasePatched(CONFIG_PATCH)) return undefined;
  return new ReleaseConfig(r);
}
