/** A server process for tests (buildkitd, docker-registry): dataplane/daemon.ts; and a free loopback port for it. */
import { createServer, type AddressInfo } from 'node:net';

export { spawnDaemon, type Daemon } from '../../dataplane/daemon.ts';

/** A TCP port free on 127.0.0.1 at the time of the call. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
