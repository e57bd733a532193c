/**
 * `glidepath lint -f FILE...`: exit 0 valid, 1 invalid (a line per problem), 2 usage error. Reads a
 * release (Release, or Rollout + AnalysisTemplates) or an `ApiVersion` document. Other Kubernetes
 * objects in the files (Services, Ingress …) are listed as ignored.
 */
import type { Command } from 'commander';
import { SpecError } from '../model/normalize.ts';
import { API_VERSION_KIND, loadApiVersion } from '../model/api-version.ts';
import { MAX_PRINTED_PROBLEMS, formatProblemList, loadRelease, readSpecDocs } from './spec-files.ts';
import { describeOther } from '../model/documents.ts';
import { EXIT, type Output, print } from './output.ts';

export function registerLint(program: Command): void {
  program
    .command('lint')
    .description('check release specs, Argo Rollouts manifests and ApiVersion documents without starting anything')
    .requiredOption('-f, --file <file...>', 'spec files (Release, or Rollout + AnalysisTemplates, or one ApiVersion); several allowed')
    .option('--image <ref>', 'image to release, overriding the spec')
    .action(async (opts: { file: string[]; image?: string }, cmd: Command) => {
      const output = cmd.optsWithGlobals<{ output: Output }>().output;
      try {
        const { docs, problems } = await readSpecDocs(opts.file);
        if (problems.length > 0) throw new SpecError(problems);
        if (docs.some((d) => (d.doc as { kind?: unknown } | null)?.kind === API_VERSION_KIND)) {
          if (opts.image) throw new SpecError([{ source: opts.file.join(','), path: '--image', message: 'applies to releases, not to ApiVersion documents', usage: true }]);
          const v = loadApiVersion(docs);
          print(output, { valid: true, api: `${v.namespace}/${v.api}`, version: v.version, route: v.route.pathPrefix }, () =>
            `${opts.file.join(', ')}: valid (ApiVersion ${v.version} of ${v.namespace}/${v.api} at ${v.route.pathPrefix}, ${v.source === 'new' ? `new Deployment ${v.deployment}` : `registers Deployment ${v.deployment}`})`,
          );
          process.exitCode = EXIT.ok;
          return;
        }
        const { plan, workloadDocument, others } = await loadRelease(opts.file, opts.image ? { image: opts.image } : {});
        const ignored = others.map(describeOther);
        const imageFrom = workloadDocument && !opts.image ? describeOther(workloadDocument) : undefined;
        print(output, { valid: true, release: `${plan.namespace}/${plan.name}`, strategy: plan.strategy.type, image: plan.image, ...(imageFrom ? { imageFrom } : {}), ...(ignored.length > 0 ? { ignored } : {}) }, () =>
          [
            `${opts.file.join(', ')}: valid (${plan.strategy.type} release of ${plan.namespace}/${plan.workload.name} to ${plan.image})`,
            ...(imageFrom ? [`image from ${imageFrom} (named by workloadRef; the release changes it, it is never applied)`] : []),
            ...ignored.map((o) => `ignored: ${o} (release start --apply-others applies it first)`),
          ].join('\n'),
        );
        process.exitCode = EXIT.ok;
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        const shown = err.problems.slice(0, MAX_PRINTED_PROBLEMS);
        const more = err.problems.length - shown.length;
        print(output, { valid: false, problems: shown, ...(more > 0 ? { more } : {}) }, () => formatProblemList(err.problems), 'stderr');
        process.exitCode = err.problems.every((p) => p.usage) ? EXIT.usage : EXIT.invalid;
      }
    });
}
