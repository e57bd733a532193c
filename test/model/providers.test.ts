/** Metric provider fields in AnalysisTemplates: what lint accepts, refuses by name, and what the plan carries. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpecError, formatProblem, normalize } from '../../model/normalize.ts';
import type { ReleasePlan } from '../../model/types.ts';

const release = {
  apiVersion: 'glidepath.dev/v1alpha1',
  kind: 'Release',
  metadata: { name: 'api', namespace: 'prod' },
  spec: {
    workloadRef: { kind: 'Deployment', name: 'api' },
    image: 'registry.local/api:3',
    strategy: { canary: { steps: [{ analysis: { templates: [{ templateName: 't' }], args: [{ name: 'svc', value: 'api' }] } }] } },
  },
};

function template(provider: unknown, args: unknown[] = [{ name: 'svc' }, { name: 'token', valueFrom: { secretKeyRef: { name: 'prom', key: 'token' } } }]) {
  return { apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 't' }, spec: { args, metrics: [{ name: 'm', successCondition: 'result[0] < 1', provider }] } };
}

function problems(provider: unknown): string[] {
  try {
    normalize([{ source: 'r.yaml', doc: release }, { source: 't.yaml', doc: template(provider) }]);
  } catch (err) {
    if (err instanceof SpecError) return err.problems.filter((p) => p.source === 't.yaml').map(formatProblem);
    throw err;
  }
  return [];
}

function plan(provider: unknown): ReleasePlan {
  return normalize([{ source: 'r.yaml', doc: release }, { source: 't.yaml', doc: template(provider) }]);
}

const address = 'http://prometheus.monitoring:9090';

test('prometheus: timeout, insecure and headers with a secret arg are accepted and carried', () => {
  const p = plan({ prometheus: { address, query: 'up{job="{{args.svc}}"}', timeout: 10, insecure: true, headers: [{ key: 'Authorization', value: 'Bearer {{args.token}}' }, { key: 'X-Scope-OrgID', value: 'team-a' }] } });
  const step = p.strategy.type === 'canary' ? p.strategy.steps[0] : undefined;
  assert.ok(step?.kind === 'analysis');
  assert.deepEqual(step.analysis.metrics[0]?.provider, {
    prometheus: { address, query: 'up{job="{{args.svc}}"}', timeout: 10, insecure: true, headers: [{ key: 'Authorization', value: 'Bearer {{args.token}}' }, { key: 'X-Scope-OrgID', value: 'team-a' }] },
  });
  // The secret stays a reference in the plan: resolved only inside the activity.
  assert.deepEqual(step.analysis.args['token'], { secretKeyRef: { name: 'prom', key: 'token' } });
});

test('prometheus: an arg outside a string literal is refused at lint time', () => {
  assert.deepEqual(problems({ prometheus: { address, query: 'sum(rate(x{job="{{args.svc}}"}[{{args.svc}}]))' } }), [
    't.yaml: spec.metrics[0].provider.prometheus.query: {{args.svc}} is outside a string literal: an arg may only be placed inside a double-quoted string, e.g. {job="{{args.svc}}"}',
  ]);
  assert.match(problems({ prometheus: { address: 'http://{{args.svc}}:9090', query: 'up' } }).join('\n'), /address: args are not substituted in address/);
  assert.match(problems({ prometheus: { address, query: 'up', headers: [{ key: 'X', value: '{{args.nope}}' }] } }).join('\n'), /headers\[0\]\.value: uses \{\{args\.nope\}\} but the template declares no arg "nope"/);
});

test('prometheus: sigv4 and oauth2 are refused by name; unknown providers too; a job needs a pod template', () => {
  assert.match(problems({ prometheus: { address, query: 'up', authentication: { sigv4: { region: 'eu-west-1' } } } }).join('\n'), /authentication\.sigv4: SigV4 \(Amazon Managed Prometheus\) is not supported/);
  assert.match(problems({ prometheus: { address, query: 'up', authentication: { oauth2: { tokenUrl: 'https://idp/token' } } } }).join('\n'), /authentication\.oauth2: OAuth2 is not supported/);
  assert.match(problems({ datadog: { query: 'x' } }).join('\n'), /provider\.datadog: unsupported field/);
  assert.match(problems({ job: { spec: {} } }).join('\n'), /provider\.job\.spec\.template: /);
  assert.match(problems({ prometheus: { address, query: 'up' }, web: { url: 'http://x/' } }).join('\n'), /has prometheus and web; a metric has exactly one provider/);
});

test('web: accepted with Argo fields; placement rules for url, body and headers', () => {
  const p = plan({ web: { url: 'http://checks.local/api/{{args.svc}}?x=1', method: 'POST', body: '{"service": "{{args.svc}}"}', jsonPath: '{$.ok}', timeoutSeconds: 5, headers: [{ key: 'Authorization', value: 'Bearer {{args.token}}' }] } });
  const step = p.strategy.type === 'canary' ? p.strategy.steps[0] : undefined;
  assert.ok(step?.kind === 'analysis');
  assert.equal((step.analysis.metrics[0]?.provider as { web: { jsonPath: string } }).web.jsonPath, '{$.ok}');
  assert.match(problems({ web: { url: 'http://{{args.svc}}/x' } }).join('\n'), /web\.url: \{\{args\.svc\}\} is in the scheme or host/);
  assert.match(problems({ web: { url: 'http://x/', method: 'POST', body: '{"n": {{args.svc}}}' } }).join('\n'), /web\.body: \{\{args\.svc\}\} is outside a string literal/);
  assert.match(problems({ web: { url: 'http://x/', body: '{}' } }).join('\n'), /web\.method: a body needs method POST or PUT/);
  assert.match(problems({ web: { url: 'ftp://x/' } }).join('\n'), /web\.url: must be an http\(s\) URL/);
  assert.match(problems({ web: { url: 'http://x/', jsonPath: '$.a', extra: 1 } }).join('\n'), /web\.extra: unsupported field/);
});
