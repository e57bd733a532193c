/** `glidepath lint -f FILE...`: exit 0 valid, 1 invalid (a line per problem), 2 usage error. */
import type { Command } from 'commander';
import { SpecError, formatProblem } from '../spec/normalize.ts';
import { loadPlan } from './spec-files.ts';
import { EXIT, type Output, print } from './output.ts';

export function registerLint(program: Command): void {
  program
    .command('lint')
    .description('check release specs and Argo Rollouts manifests without starting anything')
    .requiredOption('-f, --file <file...>', 'spec files (Release, or Rollout + AnalysisTemplates); several allowed')
    .option('--image <ref>', 'image to release, overriding the spec')
    .action(async (opts: { file: string[]; image?: string }, cmd: Command) => {
      const output = cmd.optsWithGlobals<{ output: Output }>().output;
      try {
        const plan = await loadPlan(opts.file, opts.image ? { image: opts.image } : {});
        print(output, { valid: true, release: `${plan.namespace}/${plan.name}`, strategy: plan.strategy.type, image: plan.image }, () =>
          `${opts.file.join(', ')}: valid (${plan.strategy.type} release of ${plan.namespace}/${plan.workload.name} to ${plan.image})`,
        );
        process.exitCode = EXIT.ok;
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        print(output, { valid: false, problems: err.problems }, () => err.problems.map(formatProblem).join('\n'), 'stderr');
        process.exitCode = err.problems.every((p) => p.usage) ? EXIT.usage : EXIT.invalid;
      }
    });
}
