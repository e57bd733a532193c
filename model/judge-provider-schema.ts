/** The schema of the `judge` metric provider block (model/judge-provider.ts). Edge and activities only: zod never runs in workflow code. */
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { MAX_JUDGE_SAMPLES, MAX_JUDGED_METRICS } from './judge-provider.ts';
import { templateProblems } from './template.ts';

const durationText = (min: number, what: string) =>
  z.string().refine((s) => {
    try {
      return parseDuration(s) >= min;
    } catch {
      return false;
    }
  }, `must be a duration of at least ${what}, such as "2m"`);

const ratio = z.number().positive();

export const judgeProviderSchema = z
  .strictObject({
    address: z.string().url('must be a URL such as http://prometheus.monitoring:9090'),
    lookback: durationText(1_000, '1s'),
    step: durationText(1_000, '1s'),
    timeout: z.number().int().positive().optional(),
    confidence: z.number().gt(0).lt(1).optional(),
    thresholds: z.strictObject({ pass: z.number().min(0).max(100).optional(), marginal: z.number().min(0).max(100).optional() }).optional(),
    metrics: z
      .array(
        z.strictObject({
          name: z.string().min(1),
          baseline: z.string().min(1),
          canary: z.string().min(1),
          direction: z.enum(['increase', 'decrease', 'either']).optional(),
          critical: z.boolean().optional(),
          weight: z.number().positive().optional(),
          allowedIncrease: ratio.optional(),
          allowedDecrease: ratio.optional(),
        }),
      )
      .min(1)
      .max(MAX_JUDGED_METRICS),
  })
  .superRefine((v, ctx) => {
    v.metrics.forEach((m, i) => {
      for (const side of ['baseline', 'canary'] as const) for (const message of templateProblems('promql', m[side])) ctx.addIssue({ code: 'custom', path: ['metrics', i, side], message });
    });
    if (/\{\{/.test(v.address)) ctx.addIssue({ code: 'custom', path: ['address'], message: 'args are not substituted in address (worker credentials are scoped by address)' });
    try {
      const samples = parseDuration(v.lookback) / parseDuration(v.step);
      if (samples > MAX_JUDGE_SAMPLES) ctx.addIssue({ code: 'custom', path: ['step'], message: `lookback / step is ${Math.floor(samples)} samples per side; at most ${MAX_JUDGE_SAMPLES}` });
      if (samples < 3) ctx.addIssue({ code: 'custom', path: ['lookback'], message: 'lookback must hold at least 3 steps (the test needs samples on each side)' });
    } catch {
      // reported by the duration fields
    }
    const p = v.thresholds?.pass;
    const m = v.thresholds?.marginal;
    if (p !== undefined && m !== undefined && m > p) ctx.addIssue({ code: 'custom', path: ['thresholds', 'marginal'], message: `must not exceed pass (${p})` });
    const seen = new Set<string>();
    v.metrics.forEach((x, i) => {
      if (seen.has(x.name)) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'name'], message: `metric "${x.name}" is judged twice` });
      seen.add(x.name);
    });
  });
