// docker-compose.yml, Dockerfile and deploy/prometheus.yml checked against the code, without a
// Docker engine: service names, published ports, the worker's environment variables (each one
// read by our code), the metrics port (code default = compose = Prometheus target = Dockerfile),
// the codec server (port, CORS origins = the UI's origins, the UI's TEMPORAL_CODEC_ENDPOINT), the
// search attributes, and that the image holds every file the worker and CLI import.
// With a Compose binary (GLIDEPATH_DOCKER_COMPOSE, `docker compose`, docker-compose on PATH or the
// one docs/docker-compose.md builds into $GLIDEPATH_CACHE), `compose config` must accept the file and
// its normalised output is checked too; with promtool, the Prometheus config is checked by it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_CODEC_PORT } from '../starters/codec-server.ts';
import { KEY_ID_ENV, KEYS_ENV } from '../workers/codec.ts';
import { GLIDEPATH_SEARCH_ATTRIBUTES } from '../workers/search-attributes.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (p: string): string => readFileSync(path.join(root, p), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  environment?: Record<string, string | number | null>;
  ports?: string[];
  command?: string[] | string;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;
const prometheus = parse(read('deploy/prometheus.yml')) as { scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] };
const dockerfile = read('Dockerfile');

/** Compose interpolation of the forms the file uses: ${VAR}, ${VAR:-default}, ${VAR:+replacement}, $$. */
function interpolate(value: string, env: Record<string, string>): string {
  return value
    .replace(/\$\{(\w+)(?::([-+])([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
      const v = env[name] ?? '';
      if (op === '-') return v !== '' ? v : (arg ?? '');
      if (op === '+') return v !== '' ? (arg ?? '') : '';
      return v;
    })
    .replace(/\$\$/g, '$');
}

const env = (service: string, vars: Record<string, string> = {}): Record<string, string> =>
  Object.fromEntries(Object.entries(services[service]?.environment ?? {}).map(([k, v]) => [k, interpolate(String(v ?? ''), vars)]));

/** `127.0.0.1:8080:8080` → { host: '127.0.0.1', published: 8080, target: 8080 }. */
function ports(service: string): { host: string; published: number; target: number }[] {
  return (services[service]?.ports ?? []).map((p) => {
    const m = /^(\d+\.\d+\.\d+\.\d+):(\d+):(\d+)$/.exec(String(p));
    assert.ok(m, `${service}: port "${p}" must be host-ip:published:target`);
    return { host: m[1]!, published: Number(m[2]), target: Number(m[3]) };
  });
}

function option(args: string[], name: string): string[] {
  return args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
}

/** Our TypeScript sources (workers, activities, starters, spec, workflows). */
function sources(): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(path.join(root, dir))) {
      const rel = path.join(dir, name);
      if (statSync(path.join(root, rel)).isDirectory()) walk(rel);
      else if (rel.endsWith('.ts')) out.push(read(rel));
    }
  };
  for (const dir of ['workers', 'activities', 'starters', 'model', 'workflows']) walk(dir);
  return out.join('\n');
}

describe('docker-compose.yml', () => {
  it('has the services the docs describe, Temporal on temporalio/server (auto-setup is deprecated)', () => {
    assert.deepEqual(Object.keys(services).sort(), ['codec-server', 'postgresql', 'prometheus', 'temporal', 'temporal-namespace', 'temporal-schema', 'temporal-ui', 'worker']);
    assert.match(services.temporal!.image!, /^temporalio\/server:/);
    assert.match(services['temporal-ui']!.image!, /^temporalio\/ui:/);
    assert.match(services.postgresql!.image!, /^postgres:/);
    assert.match(services.prometheus!.image!, /^prom\/prometheus:/);
    assert.ok(!JSON.stringify(compose).includes('auto-setup'));
    assert.equal(env('temporal').DB, 'postgres12');
    assert.equal(env('temporal').POSTGRES_SEEDS, 'postgresql');
    assert.deepEqual(services['codec-server']!.profiles, ['codec'], 'the codec server is opt-in');
  });

  it('publishes only on 127.0.0.1, and not PostgreSQL at all', () => {
    for (const name of Object.keys(services)) for (const p of ports(name)) assert.equal(p.host, '127.0.0.1', name);
    assert.deepEqual(ports('postgresql'), []);
    assert.deepEqual(ports('temporal'), [{ host: '127.0.0.1', published: 7233, target: 7233 }]);
  });

  it("every worker environment variable is one the code reads (no typos), and the connection points at Temporal's frontend", () => {
    const code = sources();
    const readByLibraries = new Set(['KUBECONFIG']); // @kubernetes/client-node's KubeConfig.loadFromDefault()
    assert.ok(readFileSync(path.join(root, 'node_modules/@kubernetes/client-node/dist/config.js'), 'utf8').includes('KUBECONFIG'));
    const workerEnv = env('worker');
    for (const name of Object.keys(workerEnv)) {
      if (readByLibraries.has(name)) continue;
      assert.ok(new RegExp(`\\b${name}\\b`).test(code), `worker env ${name} is read nowhere in workers/, activities/, starters/, model/`);
    }
    for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'GLIDEPATH_TASK_QUEUE', 'GLIDEPATH_METRICS_ADDRESS']) assert.ok(name in workerEnv, name);
    assert.equal(workerEnv.TEMPORAL_ADDRESS, `temporal:${ports('temporal')[0]!.target}`);
    assert.equal(env('temporal-ui').TEMPORAL_ADDRESS, workerEnv.TEMPORAL_ADDRESS);
    assert.equal(env('temporal-namespace').TEMPORAL_NAMESPACE, workerEnv.TEMPORAL_NAMESPACE);
    assert.ok(workerEnv.KUBECONFIG && services.worker!.volumes!.some((v) => interpolate(v, {}).split(':')[1] === workerEnv.KUBECONFIG), 'KUBECONFIG names the mounted file');
  });

  it('metrics port: the code default = the address the worker binds = the published port = the Prometheus target = the Dockerfile', () => {
    const m = /GLIDEPATH_METRICS_ADDRESS\s*\?\?\s*'[\d.]+:(\d+)'/.exec(read('workers/main.ts'));
    assert.ok(m, "workers/main.ts: GLIDEPATH_METRICS_ADDRESS ?? '127.0.0.1:<port>' not found");
    const port = Number(m[1]);
    assert.equal(port, 9464);
    assert.equal(env('worker').GLIDEPATH_METRICS_ADDRESS, `0.0.0.0:${port}`, 'inside a container it must bind all interfaces');
    assert.deepEqual(ports('worker').map((p) => p.target), [port]);
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'glidepath-worker');
    assert.ok(job);
    assert.equal(job.metrics_path ?? '/metrics', '/metrics');
    assert.deepEqual(job.static_configs.flatMap((s) => s.targets), [`worker:${port}`]);
    assert.ok(services.prometheus!.volumes!.includes('./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro'));
    assert.match(dockerfile, new RegExp(`GLIDEPATH_METRICS_ADDRESS=0\\.0\\.0\\.0:${port}\\b`));
    assert.match(dockerfile, new RegExp(`^EXPOSE .*\\b${port}\\b`, 'm'));
  });

  it('codec server: same key variables as the worker, the CLI default port, CORS for exactly the UI origins, and the UI pointed at it only when keys are set', () => {
    const codecEnv = Object.keys(services['codec-server']!.environment ?? {}).sort();
    assert.deepEqual(codecEnv, [KEY_ID_ENV, KEYS_ENV].sort());
    for (const name of codecEnv) assert.equal(services.worker!.environment![name], services['codec-server']!.environment![name], name);

    const args = services['codec-server']!.command as string[];
    assert.deepEqual(args.slice(0, 3), ['node', 'starters/main.ts', 'codec-server']);
    assert.deepEqual(option(args, '--host'), ['0.0.0.0']);
    assert.deepEqual(option(args, '--port'), [String(DEFAULT_CODEC_PORT)]);
    const [codecPort] = ports('codec-server');
    assert.equal(codecPort!.target, DEFAULT_CODEC_PORT);

    const [ui] = ports('temporal-ui');
    const uiOrigins = [`http://localhost:${ui!.published}`, `http://127.0.0.1:${ui!.published}`];
    assert.deepEqual(option(args, '--ui-origin').sort(), uiOrigins.sort());
    assert.deepEqual(env('temporal-ui').TEMPORAL_CORS_ORIGINS!.split(',').sort(), uiOrigins.sort());

    // The browser calls the codec server: the endpoint is the host-published address.
    assert.equal(env('temporal-ui', { [KEYS_ENV]: 'k1:x' }).TEMPORAL_CODEC_ENDPOINT, `http://localhost:${codecPort!.published}`);
    assert.equal(env('temporal-ui').TEMPORAL_CODEC_ENDPOINT, '', 'no keys: no codec endpoint');
  });

  it('`glidepath codec-server` as the compose command runs it is registered in starters/main.ts', () => {
    const res = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', path.join(root, 'starters/main.ts'), 'codec-server', '--help'], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    for (const flag of ['--port', '--host', '--ui-origin']) assert.ok(res.stdout.includes(flag), flag);
  });

  it("the namespace step registers exactly the workflows' search attributes, as both server scripts do", () => {
    const script = (services['temporal-namespace']!.command as string[]).join('\n');
    const m = /for attr in ([\w ]+); do/.exec(script);
    assert.ok(m);
    const names = GLIDEPATH_SEARCH_ATTRIBUTES.map((a) => a.name).sort();
    assert.deepEqual(m[1]!.trim().split(/\s+/).sort(), names);
    assert.match(script, /--type Keyword/);
    for (const file of ['scripts/dev-server.sh', 'scripts/temporal-sql.sh']) {
      const list = /^search_attributes=\(([\w ]+)\)/m.exec(read(file));
      assert.ok(list, `${file}: search_attributes=(...) not found`);
      assert.deepEqual(list[1]!.trim().split(/\s+/).sort(), names, file);
    }
  });

  it('start order: schema → server → namespace → worker', () => {
    assert.equal(services.temporal!.depends_on!['temporal-schema']!.condition, 'service_completed_successfully');
    assert.equal(services['temporal-namespace']!.depends_on!.temporal!.condition, 'service_healthy');
    assert.equal(services.worker!.depends_on!['temporal-namespace']!.condition, 'service_completed_successfully');
  });
});

describe('Dockerfile', () => {
  it('uses the Node version of scripts/env.sh and runs the worker', () => {
    const nodeVersion = /GLIDEPATH_NODE_VERSION:-([\d.]+)/.exec(read('scripts/env.sh'))?.[1];
    assert.ok(nodeVersion);
    assert.match(dockerfile, new RegExp(`^ARG NODE_VERSION=${nodeVersion.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(dockerfile, /^FROM node:\$\{NODE_VERSION\}-/m);
    assert.match(dockerfile, /^CMD \["node", "workers\/main\.ts"\]$/m);
    assert.match(dockerfile, /--omit=dev/);
    assert.equal(services.worker!.image, services['codec-server']!.image, 'the codec server runs from the worker image');
  });

  it('copies every file the worker and the CLI import (relative imports from workers/main.ts and starters/main.ts)', () => {
    const copied = [...dockerfile.matchAll(/^COPY (\S+) \S+$/gm)].map((m) => m[1]!).filter((p) => !p.startsWith('package'));
    for (const p of copied) assert.ok(existsSync(path.join(root, p)), `COPY ${p}: no such path`);
    const seen = new Set<string>();
    const queue = ['workers/main.ts', 'workers/bundle.ts', 'starters/main.ts', 'workflows/index.ts'];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      assert.ok(copied.some((c) => file === c || file.startsWith(`${c}/`)), `${file} is imported but not copied into the image`);
      for (const m of read(file).matchAll(/(?:from\s+|import\(\s*)'(\.{1,2}\/[^']+\.ts)'/g)) {
        queue.push(path.relative(root, path.resolve(root, path.dirname(file), m[1]!)));
      }
    }
    assert.ok(seen.size > 10, `followed ${seen.size} files`);
  });
});

/** A Compose v2+ binary, if this machine has one. */
function composeBinary(): string[] | undefined {
  if (process.env.GLIDEPATH_DOCKER_COMPOSE) return [process.env.GLIDEPATH_DOCKER_COMPOSE];
  if (spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0) return ['docker-compose'];
  const cache = process.env.GLIDEPATH_CACHE ?? path.join(homedir(), '.cache/glidepath');
  const built = existsSync(cache) ? readdirSync(cache).filter((d) => d.startsWith('docker-compose-')).map((d) => path.join(cache, d, 'bin/docker-compose')) : [];
  const found = built.find((p) => existsSync(p));
  return found ? [found] : undefined;
}

describe('validated by the tools themselves, when present', () => {
  const bin = composeBinary();
  it('`docker compose config` accepts the file; its normalised output agrees (with and without keys)', { skip: bin ? false : 'no Compose binary here (see docs/docker-compose.md)' }, () => {
    const [cmd, ...pre] = bin!;
    const config = (vars: Record<string, string>, ...args: string[]): { services: Record<string, { environment?: Record<string, string>; ports?: { published: string; target: number; host_ip: string }[] }> } => {
      const envVars = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? homedir(), ...vars };
      return JSON.parse(execFileSync(cmd!, [...pre, '-f', path.join(root, 'docker-compose.yml'), ...args, 'config', '--format', 'json'], { env: envVars, encoding: 'utf8' })) as never;
    };
    const plain = config({});
    assert.ok(!('codec-server' in plain.services), 'the codec profile is off by default');
    assert.equal(plain.services['temporal-ui']!.environment!.TEMPORAL_CODEC_ENDPOINT, '');
    const withKeys = config({ [KEYS_ENV]: 'k1:AAAA', [KEY_ID_ENV]: 'k1' }, '--profile', 'codec');
    assert.ok('codec-server' in withKeys.services);
    assert.equal(withKeys.services['temporal-ui']!.environment!.TEMPORAL_CODEC_ENDPOINT, `http://localhost:${DEFAULT_CODEC_PORT}`);
    assert.equal(withKeys.services.worker!.environment![KEYS_ENV], 'k1:AAAA');
    assert.equal(withKeys.services['codec-server']!.environment![KEYS_ENV], 'k1:AAAA');
    for (const svc of Object.values(withKeys.services)) for (const p of svc.ports ?? []) assert.equal(p.host_ip, '127.0.0.1');
  });

  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
  it('promtool check config deploy/prometheus.yml', { skip: promtool ? false : 'promtool not installed (scripts/provision-prometheus.sh installs it)' }, () => {
    const res = spawnSync('promtool', ['check', 'config', path.join(root, 'deploy/prometheus.yml')], { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stdout + res.stderr);
  });
});
