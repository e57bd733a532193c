/**
 * Structured JSON logs (pino) for the SDK and our code, and one Prometheus endpoint serving the
 * SDK's runtime metrics (Core's exporter on an internal loopback port, proxied) together with our
 * own: releases by phase, activity errors by type. Workflow-side counters (step transitions, phase
 * changes, analysis verdicts) are emitted by the workflow through the SDK's metric meter.
 */
import http from 'node:http';
import { pino, type Logger as Pino } from 'pino';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { Context } from '@temporalio/activity';
import { PHASES } from '../model/types.ts';

export function createLogger(level = process.env.GLIDEPATH_LOG_LEVEL ?? 'info'): Pino {
  return pino({ level, base: { service: 'glidepath-worker' }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Adapts pino to the SDK's Logger interface. */
export function sdkLogger(log: Pino): Logger {
  const at = (level: LogLevel) => (message: string, meta?: LogMetadata) => log[level.toLowerCase() as 'info'](meta ?? {}, message);
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}

export class Metrics {
  readonly registry = new Registry();
  readonly activityErrors: Counter<'activity' | 'type'>;
  private phaseCache: { at: number; counts: Map<string, number> } | undefined;
  private readonly client: Client | undefined;
  private readonly coreMetricsUrl: string | undefined;

  constructor(client: Client | undefined, coreMetricsUrl: string | undefined) {
    this.client = client;
    this.coreMetricsUrl = coreMetricsUrl;
    collectDefaultMetrics({ register: this.registry, prefix: 'glidepath_worker_' });
    this.activityErrors = new Counter({ name: 'glidepath_activity_errors_total', help: 'Activity failures by activity and error type', labelNames: ['activity', 'type'], registers: [this.registry] });
    const releasesByPhase = () => this.releasesByPhase();
    new Gauge({
      name: 'glidepath_releases',
      help: 'Releases in flight by phase (visibility query, refreshed at most every 15 s)',
      labelNames: ['phase'],
      registers: [this.registry],
      async collect() {
        const counts = await releasesByPhase();
        for (const phase of PHASES) this.set({ phase }, counts.get(phase) ?? 0);
      },
    });
  }

  private async releasesByPhase(): Promise<Map<string, number>> {
    if (!this.client) return new Map();
    if (this.phaseCache && Date.now() - this.phaseCache.at < 15_000) return this.phaseCache.counts;
    const counts = new Map<string, number>();
    await Promise.all(
      PHASES.map(async (phase) => {
        try {
          const { count } = await this.client!.workflow.count(`WorkflowType = 'release' AND ExecutionStatus = 'Running' AND GlidepathPhase = '${phase}'`);
          counts.set(phase, count);
        } catch {
          // visibility unavailable: report nothing rather than a wrong zero
        }
      }),
    );
    this.phaseCache = { at: Date.now(), counts };
    return counts;
  }

  /** Counts activity failures by type; rethrows. */
  interceptor(): (ctx: Context) => { inbound: ActivityInboundCallsInterceptor } {
    return (ctx) => ({
      inbound: {
        execute: async (input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) => {
          try {
            return await next(input);
          } catch (err) {
            const type = err instanceof ApplicationFailure ? (err.type ?? 'ApplicationFailure') : err instanceof Error ? err.name : 'unknown';
            this.activityErrors.inc({ activity: ctx.info.activityType, type });
            throw err;
          }
        },
      },
    });
  }

  /** Serves /metrics (ours + the SDK's) and /healthz on host:port. */
  serve(host: string, port: number): Promise<http.Server> {
    const server = http.createServer(async (req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(200).end('ok\n');
        return;
      }
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      try {
        let text = await this.registry.metrics();
        if (this.coreMetricsUrl) {
          const core = await fetch(this.coreMetricsUrl).then((r) => r.text()).catch(() => '');
          text += `\n${core}`;
        }
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}

