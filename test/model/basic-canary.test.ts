/**
 * Argo's basic-canary replica arithmetic (model/basic-canary.ts) against Argo Rollouts' own test
 * tables (test/fixtures/argo-basic-canary/argo-cases.json, copied from its canary_test.go), and the
 * steady splits a release reaches per step.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';
import type { ReleasePlan } from '../../model/types.ts';
import { limitsProblems, nextCounts, resolveLimits, targetCounts, weightedCounts, type BasicCanaryLimits } from '../../model/basic-canary.ts';

interface CalculateCase {
  name: string;
  spec: number;
  weight: number;
  maxSurge: number | string;
  maxUnavailable: number | string;
  stable: [number, number];
  canary: [number, number];
  expected: [number, number];
}
const argo = JSON.parse(readFileSync(new URL('../fixtures/argo-basic-canary/argo-cases.json', import.meta.url), 'utf8')) as {
  calculate: CalculateCase[];
  approximate: { rows: [number, number, number, number, number][] };
};

test('the weighted split matches Argo\'s approximateWeightedCanaryStableReplicaCounts table', () => {
  assert.ok(argo.approximate.rows.length >= 50);
  for (const [replicas, weight, surge, canary, stable] of argo.approximate.rows) {
    assert.deepEqual(weightedCounts(replicas, weight, surge), { canary, stable }, `replicas ${replicas}, weight ${weight}, maxSurge ${surge}`);
  }
});

test('each move matches Argo\'s CalculateReplicaCountsForBasicCanary table', () => {
  assert.ok(argo.calculate.length >= 25);
  for (const c of argo.calculate) {
    const got = nextCounts(c.spec, c.weight, { maxSurge: c.maxSurge, maxUnavailable: c.maxUnavailable }, { replicas: c.canary[0], available: c.canary[1] }, { replicas: c.stable[0], available: c.stable[1] });
    assert.deepEqual(got, { canary: c.expected[0], stable: c.expected[1] }, c.name);
  }
});

test('limits resolve as Argo resolves them: surge rounds up, unavailable down, both zero means one unavailable', () => {
  assert.deepEqual(resolveLimits({ maxSurge: '39%', maxUnavailable: '39%' }, 10), { surge: 4, unavailable: 3 });
  assert.deepEqual(resolveLimits({ maxSurge: '25%', maxUnavailable: '25%' }, 10), { surge: 3, unavailable: 2 });
  assert.deepEqual(resolveLimits({ maxSurge: '0%', maxUnavailable: '10%' }, 5), { surge: 0, unavailable: 1 });
  assert.deepEqual(resolveLimits({ maxSurge: 1, maxUnavailable: 10 }, 5), { surge: 1, unavailable: 5 });
  assert.deepEqual(limitsProblems({ maxSurge: 0, maxUnavailable: '0%' }).map((p) => p.path), ['maxSurge']);
  assert.deepEqual(limitsProblems({ maxSurge: 0 }), [], 'maxUnavailable defaults to 25%');
  assert.deepEqual(limitsProblems({ maxUnavailable: 0 }), []);
});

/** The moves from a full stable to `weight`, each one made once the pods of the one before are all available. */
function walk(spec: number, weight: number, limits: BasicCanaryLimits, from: { canary: number; stable: number }) {
  const moves = [from];
  let at = from;
  for (let i = 0; i < 50; i++) {
    const next = nextCounts(spec, weight, limits, { replicas: at.canary, available: at.canary }, { replicas: at.stable, available: at.stable });
    if (next.canary === at.canary && next.stable === at.stable) return moves;
    moves.push(next);
    at = next;
  }
  throw new Error('no fixed point');
}

test('10 replicas, setWeight 20/50/80: the moves stay within the limits and end at Argo\'s split', () => {
  const cases: [BasicCanaryLimits, number[][]][] = [
    [{ maxSurge: 0, maxUnavailable: 1 }, [[2, 8], [5, 5], [8, 2]]],
    [{ maxSurge: 1, maxUnavailable: 0 }, [[2, 8], [5, 5], [8, 2]]],
    [{ maxSurge: '25%', maxUnavailable: '25%' }, [[2, 8], [5, 5], [8, 2]]],
  ];
  for (const [limits, splits] of cases) {
    const { surge, unavailable } = resolveLimits(limits, 10);
    let at = { canary: 0, stable: 10 };
    [20, 50, 80].forEach((weight, i) => {
      const moves = walk(10, weight, limits, at);
      for (const m of moves) {
        assert.ok(m.canary + m.stable <= 10 + surge, `${JSON.stringify(limits)} weight ${weight}: ${JSON.stringify(moves)} exceeds the surge`);
        assert.ok(m.canary + m.stable >= 10 - unavailable, `${JSON.stringify(limits)} weight ${weight}: ${JSON.stringify(moves)} below the available minimum`);
      }
      at = moves.at(-1) as { canary: number; stable: number };
      assert.deepEqual([at.canary, at.stable], splits[i], `${JSON.stringify(limits)} weight ${weight}`);
      assert.deepEqual(at, targetCounts(10, weight, limits));
    });
  }
  // 5 replicas at 25 %: 1 of 5 (20 %) is nearer than 2 of 5, 2 of 6 or 1 of 6 with the surge pod.
  assert.deepEqual(targetCounts(5, 25, { maxSurge: 1, maxUnavailable: 1 }), { canary: 1, stable: 4 });
  assert.deepEqual(targetCounts(4, 25, { maxSurge: 0, maxUnavailable: 1 }), { canary: 1, stable: 3 });
});

function lint(canary: string, workload = 'template:\n    spec:\n      containers: [{ name: web, image: "shop/web:2" }]'): { problems: string[]; plan?: ReleasePlan } {
  const text = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: { name: web, namespace: shop }
spec:
  ${workload}
  strategy:
    canary:
${canary.split('\n').map((l) => `      ${l}`).join('\n')}
`;
  try {
    const plan = normalize(parseAllDocuments(text).map((d) => ({ source: 'f.yaml', doc: d.toJS() as unknown })), { image: 'shop/web:2' });
    return { problems: planProblems(plan), plan };
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    return { problems: err.problems.map(formatProblem) };
  }
}

test('a spec\'s maxSurge/maxUnavailable: the unset one at Argo\'s 25 %, both zero refused, none with a router or setCanaryScale', () => {
  const limitsOf = (p?: ReleasePlan) => (p?.strategy.type === 'canary' ? p.strategy.replicaLimits : undefined);
  const one = lint('maxSurge: 1\nsteps: [{ setWeight: 20 }]');
  assert.deepEqual(one.problems, []);
  assert.deepEqual(limitsOf(one.plan), { maxSurge: 1, maxUnavailable: '25%' });
  assert.deepEqual(limitsOf(lint('maxUnavailable: "10%"\nsteps: [{ setWeight: 20 }]').plan), { maxSurge: '25%', maxUnavailable: '10%' });
  assert.equal(limitsOf(lint('steps: [{ setWeight: 20 }]').plan), undefined, 'unset: the stable keeps its size (no limits)');
  assert.deepEqual(lint('maxSurge: 0\nmaxUnavailable: "0%"').problems, ['f.yaml: spec.strategy.canary.maxSurge: maxSurge and maxUnavailable cannot both be zero (no pod could move)']);
  assert.match(lint('maxSurge: "150%"').problems.join('\n'), /spec\.strategy\.canary\.maxSurge: must be a whole number ≥ 0 or a percentage 0–100%/);
  assert.match(lint('maxSurge: 1\nsteps: [{ setCanaryScale: { replicas: 2 } }]').problems.join('\n'), /spec\.strategy\.canary\.steps\[0\]\.setCanaryScale: sizes a canary only with trafficRouting/);
  const routed = lint('maxSurge: 1\nstableService: web-stable\ncanaryService: web-canary\ntrafficRouting: { nginx: { stableIngress: web } }\nsteps: [{ setWeight: 20 }]');
  assert.deepEqual(routed.problems, []);
  assert.equal(limitsOf(routed.plan), undefined, 'with a router the weight is traffic, as in Argo: the limits change nothing');
  const stateful = lint('maxUnavailable: 1\nsteps: [{ setWeight: 20 }]', 'workloadRef: { apiVersion: apps/v1, kind: StatefulSet, name: db }');
  assert.match(stateful.problems.join('\n'), /spec\.strategy\.canary\.maxUnavailable: cannot map to a StatefulSet: .*there is no stable to shrink/);
});
