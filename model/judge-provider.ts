/**
 * The baseline-vs-canary judgement as a metric provider (`provider.judge`, a Glidepath provider next to
 * Argo's): per judged metric, a Prometheus range query for the baseline and one for the canary over the
 * last `lookback`, sampled every `step`; the samples compared by the Mann-Whitney judge of
 * model/judge.ts (Kayenta's method). Meant for an experiment step whose templates are a fresh baseline
 * (`specRef: stable`) and the canary, whose pods the queries select by
 * `{{args.<name>}}` args bound to `{{templates.<name>.podTemplateHash}}`.
 *
 * A measurement's value is the judgement with its figures ({@link JudgeValue}); without conditions
 * a Pass is Successful, a Marginal Inconclusive and a Fail Failed. Workflow-safe; the provider block's
 * schema is in model/judge-provider-schema.ts (edge and activities only).
 */
import type { Judgment } from './judge.ts';

export const MAX_JUDGED_METRICS = 20;
/** Most samples a side may hold: lookback / step. */
export const MAX_JUDGE_SAMPLES = 1_000;

export interface JudgedMetricSpec {
  name: string;
  /** PromQL over the baseline's pods; `{{args.x}}` as in the prometheus provider. */
  baseline: string;
  canary: string;
  direction?: 'increase' | 'decrease' | 'either';
  critical?: boolean;
  weight?: number;
  allowedIncrease?: number;
  allowedDecrease?: number;
}

export interface JudgeProviderSpec {
  /** The Prometheus the queries go to (the worker's credentials apply by address, as for the prometheus provider). */
  address: string;
  /** How far back the samples reach, e.g. "2m". */
  lookback: string;
  /** The sampling step, e.g. "5s". */
  step: string;
  timeout?: number;
  confidence?: number;
  thresholds?: { pass?: number; marginal?: number };
  metrics: JudgedMetricSpec[];
}

/** The conditions a judge metric gets when it sets none. */
export const JUDGE_SUCCESS_CONDITION = 'result["verdict"] == "Pass"';
export const JUDGE_FAILURE_CONDITION = 'result["verdict"] == "Fail"';

/** One judged metric's figures, as recorded in the measurement. */
export interface JudgedMetricValue {
  name: string;
  classification: 'Pass' | 'High' | 'Low' | 'NoData';
  reason: string;
  canary: { count: number; median?: number | undefined; mean?: number | undefined };
  baseline: { count: number; median?: number | undefined; mean?: number | undefined };
  u?: number;
  pValue?: number;
}

export interface JudgeValue {
  verdict: 'Pass' | 'Marginal' | 'Fail';
  score: number;
  reason: string;
  metrics: JudgedMetricValue[];
}

/** The measurement value of a judgement: its figures, nothing else (no samples, bounded by the metric count). */
export function judgeValue(j: Judgment): JudgeValue {
  return {
    verdict: j.verdict,
    score: Math.round(j.score * 10) / 10,
    reason: j.reason,
    metrics: j.metrics.map((m) => ({
      name: m.name,
      classification: m.classification,
      reason: m.reason,
      canary: m.canary,
      baseline: m.baseline,
      ...(m.test ? { u: m.test.u, pValue: m.test.pValue } : {}),
    })),
  };
}

const num = (v: number | undefined): string => (v === undefined ? '–' : Number(v.toPrecision(4)).toString());

/** A judgement in one line: verdict, score, and each metric's medians, counts, U and p. */
export function describeJudgeValue(v: JudgeValue): string {
  const parts = v.metrics.map(
    (m) =>
      `${m.name} ${m.classification}: canary median ${num(m.canary.median)} (n ${m.canary.count}) vs baseline median ${num(m.baseline.median)} (n ${m.baseline.count})` +
      (m.pValue !== undefined ? `, U ${num(m.u)}, p ${m.pValue.toPrecision(3)}` : `, ${m.reason}`),
  );
  return `${v.verdict}, score ${v.score.toFixed(1)} (${v.reason}); ${parts.join('; ')}`;
}

export function isJudgeValue(v: unknown): v is JudgeValue {
  return typeof v === 'object' && v !== null && typeof (v as JudgeValue).verdict === 'string' && Array.isArray((v as JudgeValue).metrics);
}
