/**
 * Reading spec files: YAML that parses into something other than what the user meant is reported by
 * name with its YAML path, never as a process warning from the YAML library.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { readSpecDocs } from '../../starters/spec-files.ts';

const dir = await mkdtemp(path.join(os.tmpdir(), 'glidepath-spec-yaml-'));
after(() => rm(dir, { recursive: true, force: true }));

test('an unquoted {{args.x}} in a mapping value is a named problem at its YAML path, without a process warning', async () => {
  const file = path.join(dir, 'load-test.yaml');
  await writeFile(file, [
    'kind: AnalysisTemplate',
    'apiVersion: argoproj.io/v1alpha1',
    'metadata: {name: load-test}',
    'spec:',
    '  args: [{name: linkerd-enabled}]',
    '  metrics:',
    '  - name: pass',
    '    provider:',
    '      job:',
    '        spec:',
    '          template:',
    '            metadata:',
    '              annotations:',
    '                linkerd.io/inject: {{args.linkerd-enabled}}',
    '            spec: {containers: [{name: t, image: busybox}]}',
    '',
  ].join('\n'));
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    const { docs, problems } = await readSpecDocs([file]);
    await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
    assert.deepEqual(warnings, []);
    assert.equal(docs.length, 0);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'spec.metrics[0].provider.job.spec.template.metadata.annotations.linkerd.io/inject');
    assert.match(problems[0]?.message ?? '', /^YAML key with a collection value at line 14 \("\{\{args\.linkerd-enabled\}\}"\).*quote it: "\{\{args\.linkerd-enabled\}\}"$/);
  } finally {
    process.off('warning', onWarning);
  }
});
