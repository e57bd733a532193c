/** redact(): what leaves an activity in a message or a measurement value carries no credentials. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redact, redactValue } from '../../../activities/metrics/redact.ts';

test('URL userinfo, credential-like parameters and Authorization values are redacted', () => {
  assert.equal(redact('prometheus at https://admin:pw-9f@prom.example:9090/api answered 500'), 'prometheus at https://***@prom.example:9090/api answered 500');
  assert.equal(redact('GET http://h/x?q=up&access_token=abc123&api_key=k-1&X-Amz-Signature=deadbeef#f'), 'GET http://h/x?q=up&access_token=***&api_key=***&X-Amz-Signature=***#f');
  assert.equal(redact('sent Authorization: Bearer eyJhbGciOi.abc and Basic dXNlcjpwdw=='), 'sent Authorization: Bearer *** and Basic ***');
  assert.equal(redact('nothing secret here: rate=0.5, token count 3'), 'nothing secret here: rate=0.5, token count 3');
});

test('given secret values are redacted wherever they appear, also URL- and JSON-encoded', () => {
  const secret = 'p@ss w"rd/42';
  const text = `value ${secret}, in a URL ${encodeURIComponent(secret)}, in JSON ${JSON.stringify(secret)}`;
  const out = redact(text, [secret]);
  assert.ok(!out.includes('ss w'), out);
  assert.equal(out, 'value ***, in a URL ***, in JSON "***"');
  assert.equal(redact('abc', ['ab']), 'abc', 'values shorter than 4 characters are not searched for');
});

test('redactValue walks arrays and objects, leaving numbers alone', () => {
  assert.deepEqual(redactValue({ echo: 'token is s3cr3t-v', n: [1, 's3cr3t-v'], nested: { 's3cr3t-v': true } }, ['s3cr3t-v']), { echo: 'token is ***', n: [1, '***'], nested: { '***': true } });
  assert.equal(redactValue(0.5, ['0.5']), 0.5);
});
