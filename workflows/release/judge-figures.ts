/**
 * The figures of a baseline-vs-canary judgement (provider.judge) in a finished analysis run, one line
 * per judged metric of the run: its latest measurement's verdict, score, medians, counts, U and p. The
 * release's audit records them, so a rollback says by how much the canary was worse.
 */
import { describeJudgeValue, isJudgeValue } from '../../model/judge-provider.ts';
import type { AnalysisRunStatus } from '../messages.ts';

export function judgeFigures(record: AnalysisRunStatus): string[] {
  const out: string[] = [];
  for (const m of record.metrics) {
    const last = [...m.measurements].reverse().find((x) => isJudgeValue(x.value));
    if (last && isJudgeValue(last.value)) out.push(`${m.name}: ${describeJudgeValue(last.value)}`);
  }
  return out;
}
