/**
 * The HTTP client of the HTTP destinations: undici's fetch with a timeout on every request
 * (AbortSignal.timeout, combined with the worker's shutdown signal), keep-alive connections, an
 * optional private CA for https, and Basic or Bearer authentication from a secret read from the
 * environment. Errors name the destination and the URL without its credentials, never a secret.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { Agent, fetch, type Response } from 'undici';
import { GatewayError } from '../errors.js';
import { maskUrl } from '../secrets.js';

export interface HttpTargetOptions {
  /** The destination's name, for errors. */
  name: string;
  url: string;
  timeoutMs: number;
  /** PEM file of a CA to trust besides the system's (a private CA). */
  caFile?: string;
  /** `Authorization` header value (Basic or Bearer), built from the environment. */
  authorization?: string;
}

export interface HttpAnswer {
  status: number;
  /** The body as text (bounded by the destination's own answer size). */
  text: string;
}

export class HttpTarget {
  readonly baseUrl: string;
  private readonly agent: Agent;

  constructor(private readonly o: HttpTargetOptions) {
    this.baseUrl = o.url.replace(/\/+$/, '');
    let ca: string[] | undefined;
    if (o.caFile) {
      try {
        // The system's roots stay trusted: `ca` alone would replace them.
        ca = [...rootCertificates, readFileSync(o.caFile, 'utf8')];
      } catch (err) {
        throw new GatewayError(
          'GW_ERR_CONFIG',
          `notify destination ${o.name}: cannot read caFile ${o.caFile}: ${(err as Error).message}`,
        );
      }
    }
    this.agent = new Agent({
      connect: { ...(ca ? { ca } : {}), timeout: o.timeoutMs },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
  }

  /** POSTs `body` to baseUrl + path; throws (a retry for the caller) on network errors and timeouts. */
  async post(
    path: string,
    body: string | Uint8Array,
    contentType: string,
    signal: AbortSignal,
  ): Promise<HttpAnswer> {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (this.o.authorization) headers.authorization = this.o.authorization;
    const url = this.baseUrl + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs)]),
      });
      return { status: res.status, text: await res.text() };
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      throw new GatewayError(
        timedOut ? 'GW_ERR_TIMEOUT' : 'GW_ERR_PEER_UNREACHABLE',
        `${this.o.name}: POST ${maskUrl(url)}: ${timedOut ? `no answer within ${this.o.timeoutMs} ms` : describeCause(err)}`,
        { cause: err },
      );
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

/** undici's "fetch failed" hides the reason in `cause` (ECONNREFUSED, a TLS error). */
function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${err.message}: ${typeof code === 'string' ? `${code} ` : ''}${cause.message}`;
  }
  return err.message;
}

/** `Authorization: Basic` from a user and the value of an environment variable. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/**
 * Result of a whole request by its HTTP status. 5xx, 408 and 429 may pass: retry. 401 and 403
 * (wrong or missing credentials) and 404 (a wrong url, the plugin not loaded) are faults of the
 * configuration that every event would meet alike: retry, so that the events flow once the
 * operator fixes it, rather than all going dead one after the other. Every other 4xx is the
 * destination refusing what we sent: dead.
 */
export function classifyStatus(status: number): 'ok' | 'retry' | 'dead' {
  if (status >= 200 && status < 300) return 'ok';
  if (status >= 500 || [401, 403, 404, 408, 429].includes(status)) return 'retry';
  return 'dead';
}

/** The first bytes of an answer body, for an error message. */
export function excerpt(text: string, max = 300): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}
