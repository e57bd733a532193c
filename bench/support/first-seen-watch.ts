/**
 * Watches the objects at a list path (e.g. the Rollouts or Deployments of a namespace) and records, per
 * object name, the first time (the bench's clock, ms) it met each named predicate, when it was
 * deleted (`deleted`), and the object as last seen. Restarts the watch when the server closes it, until stopped.
 */
import { Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class FirstSeenWatch<T extends KubernetesObject> {
  private readonly first = new Map<string, Map<string, number>>();
  private readonly last = new Map<string, T>();
  private abort: AbortController | undefined;
  private stopped = false;
  private readonly kc: KubeConfig;
  private readonly path: string;
  private readonly predicates: Record<string, (o: T) => boolean>;

  constructor(kc: KubeConfig, path: string, predicates: Record<string, (o: T) => boolean>) {
    this.kc = kc;
    this.path = path;
    this.predicates = predicates;
  }

  /** Resolves once the watch is open. */
  async start(): Promise<void> {
    const w = new Watch(this.kc);
    const run = async (): Promise<void> => {
      if (this.stopped) return;
      this.abort = await w.watch(
        this.path,
        {},
        (type, obj: T) => this.seen(type, obj),
        () => void sleep(200).then(run, () => {}), // closed by the server (or an error): open it again
      );
    };
    await run();
  }

  private seen(type: string, obj: T): void {
    const name = obj.metadata?.name;
    if (!name) return;
    const firsts = this.first.get(name) ?? new Map<string, number>();
    this.first.set(name, firsts);
    const now = Date.now();
    if (type === 'DELETED') {
      if (!firsts.has('deleted')) firsts.set('deleted', now);
      return;
    }
    this.last.set(name, obj);
    for (const [label, p] of Object.entries(this.predicates)) if (!firsts.has(label) && p(obj)) firsts.set(label, now);
  }

  /** When `name` first met `label` (undefined: not yet). */
  at(name: string, label: string): number | undefined {
    return this.first.get(name)?.get(label);
  }

  /** The object as last seen. */
  latest(name: string): T | undefined {
    return this.last.get(name);
  }

  /** How many of `names` have met `label`. */
  count(names: readonly string[], label: string): number {
    return names.filter((n) => this.first.get(n)?.has(label)).length;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}
