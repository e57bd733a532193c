/**
 * The repository's commit-signing policy. It is on when `.glidepath/allowed_signers` (git's SSH
 * allowed-signers format: `<principal> <key type> <public key>` per line) exists at the last trusted
 * commit; then a new head must carry an SSH signature that `git verify-commit` accepts against that
 * list. The list is read from the trusted commit, never from the commit under test, so a commit cannot
 * admit its own signer; once a head verifies it becomes the trusted commit and its list applies next.
 * With no trusted commit yet (a source's first fetch) the head's own list is used (trust on first use).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SignatureCheck } from '../../workflows/git-source/messages.ts';
import type { GitRun } from './git-cli.ts';

export const ALLOWED_SIGNERS_PATH = '.glidepath/allowed_signers';
/** A policy file larger than this is refused as a policy (every head is then refused, named). */
const MAX_SIGNERS_BYTES = 64 * 1024;

/** Undefined when no policy applies; otherwise whether `commit` verified, and git's own words why. */
export async function checkSignature(git: GitRun, commit: string, trustedCommit: string | undefined): Promise<SignatureCheck | undefined> {
  const policyCommit = trustedCommit ?? commit;
  const refused = (detail: string): SignatureCheck => ({ verified: false, policyCommit, detail: detail.slice(0, 500) });
  // A trusted commit the cache lost must not read as "no policy".
  if ((await git(['cat-file', '-e', `${policyCommit}^{commit}`], { allowExit: [1, 128] })).code !== 0) return refused(`the trusted commit ${policyCommit.slice(0, 12)} is not in the source's cache, so its signing policy cannot be read`);
  const spec = `${policyCommit}:${ALLOWED_SIGNERS_PATH}`;
  if ((await git(['cat-file', '-e', spec], { allowExit: [1, 128] })).code !== 0) return undefined;
  const signers = (await git(['cat-file', 'blob', spec])).stdout;
  if (Buffer.byteLength(signers) > MAX_SIGNERS_BYTES) return refused(`${ALLOWED_SIGNERS_PATH} is larger than ${MAX_SIGNERS_BYTES} bytes`);
  const dir = mkdtempSync(join(tmpdir(), 'glidepath-signers-'));
  try {
    const file = join(dir, 'allowed_signers');
    writeFileSync(file, signers, { mode: 0o600 });
    const { code, stderr } = await git(['-c', 'gpg.format=ssh', '-c', `gpg.ssh.allowedSignersFile=${file}`, 'verify-commit', '--', commit], { allowExit: [1] });
    const said = firstLines(stderr);
    if (code === 0) return { verified: true, policyCommit, detail: said || 'good signature' };
    if (!(await isSigned(git, commit))) return refused('the commit is not signed');
    return refused(`the signature does not verify against ${ALLOWED_SIGNERS_PATH}: ${said || `git verify-commit exited ${code}`}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether the commit's header carries a signature at all (git verify-commit is silent when it does not). */
async function isSigned(git: GitRun, commit: string): Promise<boolean> {
  const { stdout } = await git(['cat-file', 'commit', commit]);
  const header = stdout.split('\n\n', 1)[0] ?? '';
  return /^gpgsig(-sha256)? /m.test(header);
}

const firstLines = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(0, 2)
    .join(' | ');
