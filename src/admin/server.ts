/**
 * The admin HTTP listener (node:http; four read-only endpoints need no framework):
 *
 *   GET /healthz  200 while the process runs and can recover by itself (liveness; no auth);
 *                 503 when a part gave up for good (./readiness.ts): restart the process
 *   GET /readyz   200 when the object store and the index both answer within 2 s, else 503;
 *                 the JSON body says which check failed
 *   GET /metrics  Prometheus text exposition (./metrics.ts)
 *   GET /status   JSON status report (./status-report.ts)
 *
 * Access rules: ./auth.ts. Timeouts on headers, the whole request and idle keep-alive sockets,
 * so a slow or silent client cannot hold a socket (undici's habit, applied to the server side).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import { withTimeout } from '../timeout.js';
import { authorize } from './auth.js';
import type { Metrics } from './metrics.js';
import type { LivenessReport, ReadinessReport } from './readiness.js';
import type { StatusReport } from './status-report.js';

export interface AdminServerOptions {
  host: string;
  port: number;
  /** Bearer token for everything but /healthz; without it, loopback clients only. */
  token?: string;
  metrics: Metrics;
  readiness: () => Promise<ReadinessReport>;
  /** For /healthz; without it, live while the process answers. */
  liveness?: () => LivenessReport;
  status: () => Promise<StatusReport>;
  log: Logger;
  /** Headers must arrive within this; default 5 s. */
  headersTimeoutMs?: number;
  /** The whole request must arrive within this; default 10 s. */
  requestTimeoutMs?: number;
}

export class AdminServer {
  private readonly server: http.Server;
  private closed = false;

  constructor(private readonly opts: AdminServerOptions) {
    const headersTimeout = opts.headersTimeoutMs ?? 5_000;
    this.server = http.createServer(
      {
        headersTimeout,
        requestTimeout: Math.max(opts.requestTimeoutMs ?? 10_000, headersTimeout),
        keepAliveTimeout: 5_000,
        maxHeaderSize: 16 * 1024,
      },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          opts.log.error({ event: 'admin.error', err: String(err) }, 'admin request failed');
          if (!res.headersSent) send(res, 500, json({ error: 'internal error' }), JSON_TYPE);
          else res.destroy();
        });
      },
    );
    // A socket idle this long (no request in flight) is closed.
    this.server.setTimeout(30_000);
  }

  /** Binds host:port (0 = a free port); resolves with the bound port. */
  listen(): Promise<number> {
    const server = this.server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(
          new GatewayError(
            'GW_ERR_CONFIG',
            `admin server cannot listen on ${this.opts.host}:${this.opts.port}: ${err.message}`,
            { cause: err },
          ),
        );
      server.once('error', onError);
      server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        server.off('error', onError);
        server.on('error', (err) =>
          this.opts.log.error({ event: 'admin.error', err: err.message }, 'admin listener error'),
        );
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and closes every connection; bounded by `timeoutMs`. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.server.listening) return;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await withTimeout(
      () => done,
      timeoutMs,
      () => {
        this.server.closeAllConnections();
        return done;
      },
    );
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Only the path matters; a query string is ignored, as probes and scrapers may add one.
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const decision = authorize(
      { path, remoteAddress: req.socket.remoteAddress, authorization: req.headers.authorization },
      this.opts.token,
    );
    if (!decision.ok) {
      this.opts.log.warn(
        { event: 'admin.refused', path, remote: req.socket.remoteAddress, status: decision.status },
        decision.message,
      );
      send(res, decision.status, json({ error: decision.message }), JSON_TYPE, decision.headers);
      return;
    }
    if (!ROUTES.has(path)) {
      send(res, 404, json({ error: `no such endpoint; try ${[...ROUTES].join(', ')}` }), JSON_TYPE);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // RFC 9110 15.5.6: 405 carries the methods that are allowed.
      send(res, 405, json({ error: 'method not allowed' }), JSON_TYPE, { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/healthz': {
        const l = this.opts.liveness?.() ?? { live: true };
        const body = l.live ? { status: 'ok' } : { status: 'failed', error: l.error };
        send(res, l.live ? 200 : 503, json(body), JSON_TYPE);
        return;
      }
      case '/readyz': {
        const r = await this.opts.readiness();
        send(res, r.ready ? 200 : 503, json(r), JSON_TYPE);
        return;
      }
      case '/metrics':
        send(res, 200, await this.opts.metrics.text(), this.opts.metrics.contentType);
        return;
      case '/status':
        send(res, 200, json(await this.opts.status()), JSON_TYPE);
        return;
    }
  }
}

const ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/status']);
const JSON_TYPE = 'application/json; charset=utf-8';

function json(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

function send(
  res: http.ServerResponse,
  status: number,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    ...headers,
    'content-type': contentType,
    'content-length': String(buf.length),
    // Status and metrics are live values; no proxy or browser should keep them.
    'cache-control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : buf);
}
