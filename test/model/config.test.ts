/**
 * spec.config at lint and at start (strict, each source once, not with strategy.rolling, named
 * fields), the content hash that names a copy, and the pod-template rewrite: every place a pod
 * spec names a ConfigMap or Secret is pointed at the copy, older copies too, nothing else changes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1PodSpec } from '@kubernetes/client-node';
import { configContentHash, configPatch } from '../../activities/kubernetes/config.ts';
import { configBack, configSites, pointsAt, rewriteConfigRefs } from '../../model/config-template.ts';
import { copyName, isCopyName } from '../../model/config.ts';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import { planProblems } from '../../model/plan.ts';

function release(config: unknown, strategy: unknown = { canary: { steps: [{ setWeight: 10 }] } }): unknown {
  return {
    apiVersion: 'glidepath.dev/v1alpha1',
    kind: 'Release',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { workloadRef: { kind: 'Deployment', name: 'web' }, image: 'registry.local/web:v2', strategy, config },
  };
}

function lint(config: unknown, strategy?: unknown): { problems: string[]; plan?: unknown } {
  try {
    return { problems: [], plan: normalize([{ source: 'release.yaml', doc: release(config, strategy) }]) };
  } catch (err) {
    if (err instanceof SpecError) return { problems: err.problems.map(formatProblem) };
    throw err;
  }
}

test('spec.config reaches the plan as written, and the start-time check accepts it', () => {
  const config = [{ kind: 'ConfigMap', name: 'web-config' }, { kind: 'Secret', name: 'web-secrets' }];
  const { problems, plan } = lint(config);
  assert.deepEqual(problems, []);
  assert.deepEqual((plan as { config: unknown }).config, config);
  assert.deepEqual(planProblems(plan), []);
});

test('bad spec.config is refused naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [[{ kind: 'ConfigMap', name: 'web-config', data: { a: '1' } }], /spec\.config\[0\]\.data: unsupported field/],
    [[{ kind: 'Deployment', name: 'web' }], /spec\.config\[0\]\.kind: must be one of ConfigMap, Secret/],
    [[{ kind: 'ConfigMap', name: 'Web_Config' }], /spec\.config\[0\]\.name: must be a DNS-1123 label/],
    [[{ kind: 'ConfigMap', name: 'a' }, { kind: 'ConfigMap', name: 'a' }], /spec\.config\[1\]\.name: ConfigMap a is listed twice/],
    [[{ kind: 'ConfigMap', name: 'a' }, { kind: 'ConfigMap', name: 'a-0123456789' }], /spec\.config\[1\]\.name: ConfigMap a-0123456789 is named like a copy of a/],
    [[{ kind: 'Secret', name: 'x'.repeat(53) }], /spec\.config\[0\]\.name: must be at most 52 characters/],
  ];
  for (const [config, expected] of cases) {
    const { problems } = lint(config);
    assert.ok(problems.some((p) => expected.test(p)), `${JSON.stringify(config)}: expected ${expected}, got ${JSON.stringify(problems)}`);
  }
  const rolling = lint([{ kind: 'ConfigMap', name: 'a' }], { rolling: { steps: [{ batch: '50%' }] } });
  assert.ok(rolling.problems.some((p) => /spec\.config: not supported with strategy rolling/.test(p)), JSON.stringify(rolling.problems));
});

test('the start-time check refuses the same things in a plan from any client', () => {
  const { plan } = lint([{ kind: 'ConfigMap', name: 'a' }]);
  const base = plan as Record<string, unknown>;
  assert.match(planProblems({ ...base, config: [{ kind: 'ConfigMap', name: 'a', value: 'x' }] }).join('; '), /config\.0.*value/);
  assert.match(planProblems({ ...base, config: [{ kind: 'ConfigMap', name: 'a' }, { kind: 'ConfigMap', name: 'a' }] }).join('; '), /config\.1\.name: ConfigMap a is listed twice/);
  assert.match(planProblems({ ...base, strategy: { type: 'rolling', steps: [] } }).join('; '), /config: not supported with strategy rolling/);
});

test('the content hash names a copy: same content same name, any change (or another workload) another', () => {
  const a = configContentHash('web', 'ConfigMap', { data: { b: '2', a: '1' } });
  assert.equal(a, configContentHash('web', 'ConfigMap', { data: { a: '1', b: '2' } }), 'key order does not matter');
  assert.notEqual(a, configContentHash('web', 'ConfigMap', { data: { a: '1', b: '3' } }));
  assert.notEqual(a, configContentHash('api', 'ConfigMap', { data: { a: '1', b: '2' } }), 'each workload has its own copies');
  assert.notEqual(a, configContentHash('web', 'Secret', { data: { a: '1', b: '2' } }));
  assert.notEqual(configContentHash('web', 'Secret', { type: 'Opaque', data: { a: 'MQ==' } }), configContentHash('web', 'Secret', { type: 'kubernetes.io/tls', data: { a: 'MQ==' } }));
  const name = copyName('web-config', a);
  assert.match(name, /^web-config-[0-9a-f]{10}$/);
  assert.ok(isCopyName('web-config', name));
  assert.ok(!isCopyName('web', name), 'web-config-<hash> is not a copy of web');
  assert.ok(!isCopyName('web-config', 'web-config-prod'));
});

const podSpec = (): V1PodSpec => ({
  volumes: [
    { name: 'cfg', configMap: { name: 'web-config', items: [{ key: 'a', path: 'a.conf' }] } },
    { name: 'old', configMap: { name: 'other' } },
    { name: 'creds', secret: { secretName: 'web-secrets-0123456789' } },
    { name: 'all', projected: { sources: [{ configMap: { name: 'web-config' } }, { secret: { name: 'web-secrets' } }, { serviceAccountToken: { path: 't' } }] } },
  ],
  initContainers: [{ name: 'init', image: 'busybox', envFrom: [{ configMapRef: { name: 'web-config' } }] }],
  containers: [
    {
      name: 'app',
      image: 'web:1',
      envFrom: [{ secretRef: { name: 'web-secrets' } }, { configMapRef: { name: 'other' } }],
      env: [
        { name: 'A', valueFrom: { configMapKeyRef: { name: 'web-config', key: 'a' } } },
        { name: 'B', value: 'literal' },
        { name: 'C', valueFrom: { secretKeyRef: { name: 'web-secrets', key: 'c' } } },
      ],
    },
  ],
});

const copies = [
  { kind: 'ConfigMap' as const, name: 'web-config', copy: 'web-config-aaaaaaaaaa', stable: 'web-config' },
  { kind: 'Secret' as const, name: 'web-secrets', copy: 'web-secrets-bbbbbbbbbb', stable: 'web-secrets-0123456789' },
];

test('the rewrite points every use of a source (and of an older copy) at its copy, and nothing else', () => {
  const before = podSpec();
  const after = rewriteConfigRefs(before, copies);
  assert.deepEqual(before, podSpec(), 'the input is not changed');
  const names = configSites(after).map((s) => `${s.path}=${s.name}`);
  assert.deepEqual(names, [
    'volumes[0].configMap.name=web-config-aaaaaaaaaa',
    'volumes[1].configMap.name=other',
    'volumes[2].secret.secretName=web-secrets-bbbbbbbbbb',
    'volumes[3].projected.sources[0].configMap.name=web-config-aaaaaaaaaa',
    'volumes[3].projected.sources[1].secret.name=web-secrets-bbbbbbbbbb',
    'initContainers[0].envFrom[0].configMapRef.name=web-config-aaaaaaaaaa',
    'containers[0].envFrom[0].secretRef.name=web-secrets-bbbbbbbbbb',
    'containers[0].envFrom[1].configMapRef.name=other',
    'containers[0].env[0].valueFrom.configMapKeyRef.name=web-config-aaaaaaaaaa',
    'containers[0].env[2].valueFrom.secretKeyRef.name=web-secrets-bbbbbbbbbb',
  ]);
  assert.deepEqual(after.volumes?.[0]?.configMap?.items, [{ key: 'a', path: 'a.conf' }], 'items kept');
  assert.ok(pointsAt(after, copies));
  assert.ok(!pointsAt(before, copies));

  // Back: to what the stable used when the attempt started.
  const back = configBack(after, copies);
  assert.deepEqual(back, [
    { kind: 'ConfigMap', name: 'web-config', copy: 'web-config' },
    { kind: 'Secret', name: 'web-secrets', copy: 'web-secrets-0123456789' },
  ]);
  assert.deepEqual(configSites(rewriteConfigRefs(after, back ?? [])).map((s) => s.name), configSites(podSpec()).map((s) => s.name).map((n) => (n === 'web-secrets' ? 'web-secrets-0123456789' : n)));
  assert.equal(configBack(before, copies), undefined, 'a stable still on its old config has nothing to put back');
});

test('the stable patch carries only the changed volumes and env entries, and the whole envFrom list', () => {
  const before = podSpec();
  const patch = configPatch(before, rewriteConfigRefs(before, copies));
  assert.deepEqual(patch?.volumes?.map((v) => v.name), ['cfg', 'creds', 'all']);
  assert.deepEqual(patch?.initContainers, [{ name: 'init', envFrom: [{ configMapRef: { name: 'web-config-aaaaaaaaaa' } }] }]);
  assert.deepEqual(patch?.containers?.[0]?.env?.map((e) => e.name), ['A', 'C']);
  assert.deepEqual(patch?.containers?.[0]?.envFrom, [{ secretRef: { name: 'web-secrets-bbbbbbbbbb' } }, { configMapRef: { name: 'other' } }]);
  assert.equal(configPatch(before, podSpec()), undefined, 'nothing changed: no patch');
});
