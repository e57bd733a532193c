/**
 * A process's resident memory (VmRSS) sampled every `everyMs` until stopped: the peak of the samples
 * since the last {@link RssSampler.reset} (a window, e.g. one burst), and the kernel's high-water mark
 * over the process's life (VmHWM, which no sampling interval can miss).
 */
import { readFileSync } from 'node:fs';

const field = (pid: number, name: string): number => {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
  } catch {
    return NaN; // the process has gone
  }
};

export class RssSampler {
  private windowPeak = 0;
  private hwm = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly pid: number;

  constructor(pid: number, everyMs = 250) {
    this.pid = pid;
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  sample(): number {
    const rss = field(this.pid, 'VmRSS');
    if (rss > this.windowPeak) this.windowPeak = rss;
    const hwm = field(this.pid, 'VmHWM');
    if (hwm > this.hwm) this.hwm = hwm;
    return rss;
  }

  /** Starts a new window: its peak is the current RSS. */
  reset(): void {
    this.windowPeak = 0;
    this.sample();
  }

  /** The highest sampled RSS since the last reset. */
  get peak(): number {
    this.sample();
    return this.windowPeak;
  }

  /** The highest RSS since the process started (VmHWM). */
  get lifetimePeak(): number {
    this.sample();
    return this.hwm;
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}
