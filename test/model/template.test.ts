/** `{{args.x}}` templating: where args may stand, and escaping that keeps them values. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TemplateError, argNames, renderHeader, renderJsonText, renderJsonValue, renderPromQL, renderUrl, templateProblems } from '../../model/template.ts';

const MALICIOUS = 'x"} or vector(1) or {a="';

test('PromQL: an arg inside a double-quoted string is substituted and escaped', () => {
  assert.equal(renderPromQL('up{job="{{args.job}}"}', { job: 'api' }), 'up{job="api"}');
  assert.equal(renderPromQL('up{job="{{ args.job }}"}', { job: 'api' }), 'up{job="api"}');
  assert.equal(renderPromQL('up{job="{{args.job}}"}', { job: MALICIOUS }), 'up{job="x\\"\\x7d or vector(1) or \\x7ba=\\""}');
  assert.equal(renderPromQL('up{job="{{args.job}}"}', { job: 'a\\"\nb\r\u0000' }), 'up{job="a\\\\\\"\\nb\\r\\x00"}');
});

test('PromQL: the rendered string literal always ends where the template says', () => {
  // Whatever the value, the literal closes exactly at the template's closing quote.
  const values = [MALICIOUS, '\\', '\\"', '"', '\n"}', '}}', '{{args.other}}', '\u2028', '`', "'", '#'];
  for (const v of values) {
    const out = renderPromQL('sum(up{job="{{args.v}}"}) > 0', { v, other: 'SHOULD-NOT-APPEAR' });
    assert.ok(out.startsWith('sum(up{job="') && out.endsWith('"}) > 0'), out);
    const inner = out.slice('sum(up{job="'.length, -'"}) > 0'.length);
    // No unescaped quote inside, no raw newline, no brace: the literal cannot end early.
    assert.doesNotMatch(inner.replace(/\\\\/g, ''), /(^|[^\\])"/, `unescaped quote in ${JSON.stringify(inner)}`);
    assert.doesNotMatch(inner, /[\n{}]/);
    assert.doesNotMatch(out, /SHOULD-NOT-APPEAR/, 'substitution is single-pass');
  }
});

test('PromQL: an arg outside a double-quoted string is refused (lint and render)', () => {
  const bad = ['sum(rate(http_requests_total[{{args.window}}]))', 'up > {{args.threshold}}', "up{job='{{args.job}}'}", 'up{job=`{{args.job}}`}', 'up # {{args.note}}\n'];
  for (const q of bad) {
    assert.equal(templateProblems('promql', q).length, 1, q);
    assert.throws(() => renderPromQL(q, { window: '5m', threshold: '1', job: 'a', note: 'n' }), TemplateError);
  }
  assert.match(templateProblems('promql', 'up > {{args.t}}')[0] ?? '', /outside a string literal.*double-quoted/);
  assert.deepEqual(templateProblems('promql', 'up{job="{{args.job}}"} # "{{args.x}}" in a comment is not a string'), [
    '{{args.x}} is inside a comment: an arg may only be placed inside a double-quoted string, e.g. {job="{{args.x}}"}',
  ]);
  assert.match(templateProblems('promql', 'up{job="{{metric.name}}"}')[0] ?? '', /unsupported placeholder/);
  assert.match(templateProblems('promql', 'up{job="{{args.a}}}')[0] ?? '', /unterminated/);
});

test('PromQL: escaped quotes in the template keep the scanner in the string', () => {
  assert.deepEqual(templateProblems('promql', 'up{a="x\\"y", b="{{args.b}}"}'), []);
  assert.deepEqual(templateProblems('promql', 'up{a="x\\"{{args.b}}"}'), []);
  assert.equal(templateProblems('promql', 'up{a="x\\\\"} > {{args.b}}').length, 1);
});

test('PromQL: in a regex matcher the value is regex-quoted, so ".*" matches only ".*"', () => {
  assert.equal(renderPromQL('up{job=~"{{args.job}}"}', { job: '.*' }), 'up{job=~"\\\\.\\\\*"}');
  assert.equal(renderPromQL('up{job!~ "{{args.job}}"}', { job: 'a|b' }), 'up{job!~ "a\\\\|b"}');
  assert.equal(renderPromQL('up{job=~"api-{{args.v}}|web"}', { v: 'v1.2' }), 'up{job=~"api-v1\\\\.2|web"}');
  assert.equal(renderPromQL('up{job="{{args.job}}"}', { job: '.*' }), 'up{job=".*"}');
});

test('PromQL: a missing arg names the arg, never a value', () => {
  assert.throws(() => renderPromQL('up{job="{{args.job}}"}', {}), /arg "job" has no value/);
  assert.deepEqual(argNames('a{x="{{args.a}}", y="{{ args.b-c }}", z="{{args.a}}"}'), ['a', 'b-c']);
});

test('JSON text: args inside strings only, JSON-escaped', () => {
  const out = renderJsonText('{"service": "{{args.s}}", "n": 1}', { s: '", "admin": true, "x": "' });
  assert.deepEqual(JSON.parse(out), { service: '", "admin": true, "x": "', n: 1 });
  assert.equal(templateProblems('json', '{"n": {{args.n}}}').length, 1);
  assert.deepEqual(renderJsonValue({ a: ['{{args.s}}', 2], b: { c: 'x-{{args.s}}' } }, { s: '"}' }), { a: ['"}', 2], b: { c: 'x-"}' } });
});

test('URL: args in path and query only, percent-encoded; no dot segments', () => {
  assert.equal(renderUrl('http://h:8080/api/{{args.s}}?q={{args.q}}', { s: 'a/b', q: '1&admin=1#' }), 'http://h:8080/api/a%2Fb?q=1%26admin%3D1%23');
  assert.match(templateProblems('url', 'http://{{args.host}}/x')[0] ?? '', /scheme or host/);
  assert.match(templateProblems('url', 'http://h@{{args.host}}/x')[0] ?? '', /scheme or host/);
  assert.throws(() => renderUrl('http://h/api/{{args.s}}/x', { s: '..' }), /would change the URL path/);
});

test('header values: control characters refused, the message names the arg only', () => {
  assert.equal(renderHeader('Bearer {{args.token}}', { token: 'abc.def' }), 'Bearer abc.def');
  assert.throws(
    () => renderHeader('Bearer {{args.token}}', { token: 'secret\r\nX-Evil: 1' }),
    (err: Error) => err instanceof TemplateError && /arg "token"/.test(err.message) && !err.message.includes('secret'),
  );
});
