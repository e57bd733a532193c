/**
 * The judge metric provider (`provider.judge`, model/judge-provider.ts): for each judged metric, the
 * baseline's and the canary's samples over the last `lookback` by Prometheus range queries (through
 * the prometheus provider: the same rendering of args, credentials by address, redaction and
 * fail-closed answers), then Kayenta's judgement by the Mann-Whitney judge (model/judge.ts). The value
 * is the judgement's figures, never the samples.
 */
import { ApplicationFailure } from '@temporalio/common';
import { parseDuration } from '../../model/duration.ts';
import { judge } from '../../model/judge.ts';
import { judgeValue, type JudgeProviderSpec, type JudgeValue } from '../../model/judge-provider.ts';
import type { MetricSpec } from '../../model/types.ts';
import type { MeasureContext, MetricProvider } from '../contract.ts';
import { ErrorType } from '../errors.ts';
import type { PrometheusProvider } from './prometheus.ts';

export function createJudgeProvider(prometheus: PrometheusProvider, now: () => Date = () => new Date()): MetricProvider {
  return {
    type: 'judge',
    async measure(metric: MetricSpec, ctx: MeasureContext): Promise<JudgeValue> {
      if (!('judge' in metric.provider)) throw ApplicationFailure.nonRetryable(`metric "${metric.name}" has no judge provider`, ErrorType.InvalidSpec);
      const spec: JudgeProviderSpec = metric.provider.judge;
      const end = now();
      const range = { start: new Date(end.getTime() - parseDuration(spec.lookback)), end, stepSeconds: parseDuration(spec.step) / 1000 };
      const connection = { address: spec.address, ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}) };
      const samples = async (query: string): Promise<number[]> =>
        (await prometheus.queryRange({ ...connection, query }, ctx.args, range, ctx.signal)).flatMap((s) => s.values.map((v) => v[1]));
      const judged = [];
      for (const m of spec.metrics) {
        judged.push({
          name: m.name,
          baseline: await samples(m.baseline),
          canary: await samples(m.canary),
          ...(m.direction ? { direction: m.direction } : {}),
          ...(m.critical !== undefined ? { critical: m.critical } : {}),
          ...(m.weight !== undefined ? { weight: m.weight } : {}),
          ...(m.allowedIncrease !== undefined ? { allowedIncrease: m.allowedIncrease } : {}),
          ...(m.allowedDecrease !== undefined ? { allowedDecrease: m.allowedDecrease } : {}),
        });
      }
      const options = {
        ...(spec.confidence !== undefined ? { confidence: spec.confidence } : {}),
        ...(spec.thresholds?.pass !== undefined ? { passThreshold: spec.thresholds.pass } : {}),
        ...(spec.thresholds?.marginal !== undefined ? { marginalThreshold: spec.thresholds.marginal } : {}),
      };
      return judgeValue(judge(judged, options));
    },
  };
}
