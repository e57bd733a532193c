/**
 * History size of a long canary: a 20-step release (setWeight, pause and analysis steps, each
 * analysis taking 10 measurements) run under time skipping with stubbed activities. Prints
 * history events per step and per release (goal ≤ 12 per step; Temporal warns at 10,240 events).
 */
import { Harness, analysis, canary, measurement, metric } from '../test/workflows/harness.ts';
import type { CanaryStep } from '../model/types.ts';

const steps: CanaryStep[] = [];
for (let i = 0; steps.length < 20; i++) {
  steps.push({ kind: 'setWeight', weight: Math.min(5 + i * 14, 100) });
  if (steps.length < 20) steps.push({ kind: 'analysis', analysis: analysis(`gate-${i}`, [metric('success-rate', { count: 10, intervalMs: 60_000 })]) });
  if (steps.length < 20) steps.push({ kind: 'pause', durationMs: 600_000 });
}

const h = new Harness();
await h.start();
try {
  const plan = canary('bench-events', steps);
  const handle = await h.begin(plan, {
    runAnalysis: async (_t, run) => ({ metrics: run.metrics.map((m) => ({ name: m.name, measurements: Array.from({ length: 10 }, () => measurement('Successful', [0.999])) })), terminated: false }),
  });
  const result = await handle.result();
  if (result.outcome !== 'Promoted') throw new Error(`bench release ended ${result.outcome}: ${result.reason}`);
  const events = (await handle.fetchHistory()).events ?? [];
  const kinds = (k: CanaryStep['kind']) => steps.filter((s) => s.kind === k).length;
  console.log(`history-events: ${steps.length}-step canary (${kinds('setWeight')} setWeight, ${kinds('analysis')} analysis × 10 measurements, ${kinds('pause')} pause)`);
  console.log(`history-events: ${events.length} events per release, ${(events.length / steps.length).toFixed(1)} events per step (goal ≤ 12; Temporal warns at 10,240)`);
} finally {
  await h.stop();
}
