/** The worker's memory options from the environment (workers/config.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, DEFAULT_MAX_CACHED_WORKFLOWS, memoryOptions } from '../../workers/config.ts';

test('the workflow cache is the worker default unless GLIDEPATH_MAX_CACHED_WORKFLOWS sets it', () => {
  assert.deepEqual(memoryOptions({}), { maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS });
  assert.deepEqual(memoryOptions({ GLIDEPATH_MAX_CACHED_WORKFLOWS: '' }), { maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS });
  assert.deepEqual(memoryOptions({ GLIDEPATH_MAX_CACHED_WORKFLOWS: '2000' }), { maxCachedWorkflows: 2000 });
  assert.deepEqual(memoryOptions({ GLIDEPATH_MAX_CACHED_WORKFLOWS: '0' }), { maxCachedWorkflows: 0 });
});

test('a cache size the SDK cannot take is refused, naming the variable', () => {
  for (const bad of ['1', '-5', '2.5', 'many']) {
    assert.throws(() => memoryOptions({ GLIDEPATH_MAX_CACHED_WORKFLOWS: bad }), (err: Error) => err instanceof ConfigError && err.message.startsWith(`GLIDEPATH_MAX_CACHED_WORKFLOWS=${bad}:`), bad);
  }
});
