/** Argo traffic routers this build refuses: refused by name, with the supported router that covers the case. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { problems } from './helpers.ts';

const services = { stableService: 'web-stable', canaryService: 'web-canary' };

test('ambassador, apisix and appMesh are refused naming the supported router to migrate to', () => {
  const cases: [string, unknown, RegExp][] = [
    ['ambassador', { mappings: ['web'] }, /Gateway API router \(plugins: argoproj-labs\/gatewayAPI\).*Emissary-ingress/],
    ['apisix', { route: { name: 'web', rules: ['r'] } }, /Gateway API router \(plugins: argoproj-labs\/gatewayAPI\).*APISIX/],
    ['appMesh', { virtualService: { name: 'web' }, virtualNodeGroup: { canaryVirtualNodeRef: { name: 'c' }, stableVirtualNodeRef: { name: 's' } } }, /use alb .*Gateway API router/],
  ];
  for (const [key, block, remedy] of cases) {
    const found = problems({ ...services, trafficRouting: { [key]: block } });
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0] ?? '', new RegExp(`^r\\.yaml: spec\\.strategy\\.canary\\.trafficRouting\\.${key}: traffic router "${key}" is not supported by this version of Glidepath \\(supported: [^)]*\\); `));
    assert.match(found[0] ?? '', remedy);
    assert.match(found[0] ?? '', /\(docs\/migrating-from-argo\.md\)$/);
  }
});
