/**
 * A real Git server for tests: Debian's `git http-backend` (smart HTTP) run as CGI behind a small Node
 * HTTP server on 127.0.0.1. Push (git-receive-pack) always needs basic auth; with `authForRead`, fetch
 * does too. The backend gets REMOTE_USER only after the password matched, and refuses a push without it.
 * `bash scripts/provision-git.sh` installs git when missing. Also: bare repositories and commits pushed
 * with given content, through the same HTTP endpoint a source fetches from.
 */
import { execFile, spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const GIT_BIN = process.env.GIT_BIN ?? '/usr/bin/git';
export const HTTP_BACKEND = process.env.GIT_HTTP_BACKEND ?? '/usr/lib/git-core/git-http-backend';

/** The reason git cannot be used here, or undefined when it can. */
export function gitMissing(): string | undefined {
  for (const bin of [GIT_BIN, HTTP_BACKEND]) {
    try {
      accessSync(bin, constants.X_OK);
    } catch {
      return `no ${bin}: run bash scripts/provision-git.sh (installs Debian's git)`;
    }
  }
  return undefined;
}

export interface GitServerOptions {
  users: Record<string, string>;
  /** Fetch needs auth too (otherwise only push does). */
  authForRead?: boolean;
}

export interface GitServer {
  /** `http://127.0.0.1:<port>`; a repository is at `${url}/<name>.git`. */
  url: string;
  root: string;
  /** Requests answered so far, by status (e.g. how many 401s). */
  requests: { method: string; path: string; status: number }[];
  createRepo(name: string, defaultBranch?: string): Promise<string>;
  stop(): Promise<void>;
}

function authorized(header: string | undefined, users: Record<string, string>): string | undefined {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const at = text.indexOf(':');
  if (at < 0) return undefined;
  const user = text.slice(0, at);
  const expected = users[user];
  if (expected === undefined) return undefined;
  const a = Buffer.from(text.slice(at + 1));
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b) ? user : undefined;
}

/** Runs git-http-backend for one request (CGI: headers in env, body on stdin, "Status:" and headers then the body on stdout). */
function cgi(root: string, req: IncomingMessage, res: ServerResponse, user: string | undefined, done: (status: number) => void): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    ...(user ? { REMOTE_USER: user } : {}),
  };
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') env[`HTTP_${k.toUpperCase().replace(/-/g, '_')}`] = v;
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  const child = spawn(HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'ignore'] });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let status = 200;
  let headersSent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const text = head.toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    if (end < 0) return;
    const sep = /\r?\n\r?\n/.exec(text.slice(end)) as RegExpExecArray;
    for (const line of text.slice(0, end).split(/\r?\n/)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    headersSent = true;
    res.write(head.subarray(end + sep[0].length));
  });
  child.on('close', () => {
    if (!headersSent) res.writeHead(500);
    res.end();
    done(headersSent ? status : 500);
  });
}

export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  const missing = gitMissing();
  if (missing) throw new Error(missing);
  const root = mkdtempSync(join(tmpdir(), 'glidepath-git-'));
  const requests: GitServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const push = url.searchParams.get('service') === 'git-receive-pack' || url.pathname.endsWith('/git-receive-pack');
    const user = authorized(req.headers.authorization, options.users);
    const record = (status: number) => requests.push({ method: req.method ?? '', path: req.url ?? '', status });
    if ((push || options.authForRead) && !user) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="glidepath-test-git"', 'Content-Type': 'text/plain' }).end('authentication required\n');
      record(401);
      req.resume();
      return;
    }
    cgi(root, req, res, user, record);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    root,
    requests,
    async createRepo(name, defaultBranch = 'main') {
      const dir = join(root, `${name}.git`);
      await run(GIT_BIN, ['init', '--quiet', '--bare', `--initial-branch=${defaultBranch}`, dir]);
      return `http://127.0.0.1:${port}/${name}.git`;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Env that makes git send basic auth without putting the password in argv or a URL. */
export function basicAuthEnv(user: string, password: string): Record<string, string> {
  return {
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  };
}

/** A working clone that pushes commits with given content to one branch of a repository. */
export class GitPusher {
  readonly dir: string;
  private readonly env: Record<string, string>;
  private constructor(dir: string, env: Record<string, string>) {
    this.dir = dir;
    this.env = env;
  }

  static async create(repoUrl: string, branch: string, auth: { user: string; password: string }): Promise<GitPusher> {
    const dir = mkdtempSync(join(tmpdir(), 'glidepath-git-work-'));
    const env = {
      ...basicAuthEnv(auth.user, auth.password),
      GIT_AUTHOR_NAME: 'Test Author', GIT_AUTHOR_EMAIL: 'author@example.test',
      GIT_COMMITTER_NAME: 'Test Author', GIT_COMMITTER_EMAIL: 'author@example.test',
      GIT_TERMINAL_PROMPT: '0',
    };
    const p = new GitPusher(dir, env);
    await p.git('init', '--quiet', `--initial-branch=${branch}`);
    await p.git('remote', 'add', 'origin', repoUrl);
    return p;
  }

  async git(...args: string[]): Promise<string> {
    const { stdout } = await run(GIT_BIN, args, { cwd: this.dir, env: { ...process.env, ...this.env } });
    return stdout.trim();
  }

  /** Writes the files (null deletes one), commits them (signed with the SSH key file `signWith`, if given) and pushes; returns the commit's ID. */
  async commit(files: Record<string, string | null>, message: string, opts: { force?: boolean; signWith?: string } = {}): Promise<string> {
    for (const [file, content] of Object.entries(files)) {
      const at = join(this.dir, file);
      if (content === null) {
        rmSync(at, { force: true });
        continue;
      }
      mkdirSync(dirname(at), { recursive: true });
      writeFileSync(at, content);
    }
    await this.git('add', '--all');
    const sign = opts.signWith ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${opts.signWith}`] : [];
    await this.git(...sign, 'commit', '--quiet', '--allow-empty', ...(opts.signWith ? ['-S'] : []), '-m', message);
    const branch = await this.git('rev-parse', '--abbrev-ref', 'HEAD');
    await this.git('push', '--quiet', ...(opts.force ? ['--force'] : []), 'origin', `HEAD:refs/heads/${branch}`);
    return this.git('rev-parse', 'HEAD');
  }

  /** Rewrites history: the branch goes back `n` commits (locally; the next commit pushes with force). */
  async rewind(n: number): Promise<void> {
    await this.git('reset', '--quiet', '--hard', `HEAD~${n}`);
  }

  stop(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
