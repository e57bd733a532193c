/** Release documents for the spec tests, and the problems `normalize` reports for them. */
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';

/** A Release `shop/web` whose canary block is `defaults` overlaid with `canary` (by default one setWeight step). */
export function release(canary: Record<string, unknown>, defaults: Record<string, unknown> = { steps: [{ setWeight: 10 }] }) {
  return {
    source: 'r.yaml',
    doc: {
      apiVersion: 'glidepath.dev/v1alpha1',
      kind: 'Release',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'example/web:2', strategy: { canary: { ...defaults, ...canary } } },
    },
  };
}

/** The formatted problems of {@link release}`(canary, defaults)`; none when it normalises. */
export function problems(canary: Record<string, unknown>, defaults?: Record<string, unknown>): string[] {
  try {
    normalize([release(canary, defaults)]);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.map(formatProblem);
    throw err;
  }
  return [];
}
