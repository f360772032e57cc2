import { performance } from 'node:perf_hooks';
import { HttpService } from '@nestjs/axios';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { AxiosRequestConfig } from 'axios';
import { ExponentialBackoff, handleWhenResult, retry, RetryPolicy } from 'cockatiel';
import { AppConfig } from '../config/app-config';
import { upstreamAdapter } from './upstream-adapter';
import { reusedSocketEvidence, UpstreamHttpAgent, UpstreamHttpsAgent } from './upstream-agent';
import { CircuitOpenError, CircuitView, UpstreamCircuit } from './upstream-circuit';
import { AttemptOutcome, interpretResponse, interpretTransportError, ResponseHeaders } from './upstream-response';
import { UpstreamMetrics } from './upstream.metrics';
import { UpstreamOutcome, UpstreamVerifyRequest, VerifyOptions } from './upstream.types';

export const UPSTREAM_VERIFY_PATH = '/identity/idcard/ocr';
/** Bodies are a few hundred bytes; anything far larger is not the documented answer. */
const MAX_RESPONSE_BYTES = 256 * 1024;
/** Token sent to the built-in sandbox when no SANDBOX_TOKEN is configured (it accepts any). */
const DEFAULT_SANDBOX_TOKEN = 'sandbox';

/**
 * Why an attempt may be retried, or null if it must not be. Only outcomes that prove the
 * upstream did not charge qualify (SPEC §4.3): nothing was sent (connection refused,
 * unreachable, a reused keep-alive socket the upstream had closed before it carried the
 * request), a 429, or the non-charged codes -4 (database exception) and -6 (upgrading).
 * A timeout, reset, 5xx or unreadable answer may have been charged: never retried.
 */
export function retryCause(outcome: AttemptOutcome): string | null {
  switch (outcome.kind) {
    case 'unsent':
      return outcome.reason === 'circuit_open' ? null : outcome.reason;
    case 'rejected':
      return outcome.httpStatus === 429 ? 'http_429' : null;
    case 'answered':
      return outcome.result === '-4' || outcome.result === '-6' ? `result_${outcome.result}` : null;
    case 'indeterminate':
      return null;
  }
}

/** The documented body: only the fields the caller gave, in the documented order. */
export function upstreamBody(request: UpstreamVerifyRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (request.name !== undefined) body.name = request.name;
  if (request.id_card !== undefined) body.id_card = request.id_card;
  if (request.image_url !== undefined) body.image_url = request.image_url;
  if (request.encryption !== undefined) body.encryption = request.encryption;
  return body;
}

/**
 * The one way idgate calls the paid upstream. `verify` never throws: it returns an
 * outcome that says whether the call was answered (and charged or not), rejected (not
 * charged), indeterminate (may have been charged) or never sent (not charged).
 */
@Injectable()
export class UpstreamClient implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(UpstreamClient.name);
  // Keep-alive: a verification should not pay for a TCP (and TLS) handshake each time. Idle
  // sockets are retired before the upstream would close them (`keepAliveIdleMs`, 0: no reuse).
  private readonly httpAgent: UpstreamHttpAgent;
  private readonly httpsAgent: UpstreamHttpsAgent;
  private readonly retryPolicy: RetryPolicy;
  private readonly url: string;
  /** `Bearer <token>`, built once. */
  private readonly authorization: string;
  /** Sandbox mode (`upstream.mode`): the built-in sandbox answers, results are simulated and nothing is charged. */
  readonly simulated: boolean;

  constructor(
    private readonly http: HttpService,
    private readonly config: AppConfig,
    private readonly circuit: UpstreamCircuit,
    private readonly metrics: UpstreamMetrics,
  ) {
    const upstream = config.upstream;
    this.url = `${upstream.baseUrl.replace(/\/+$/, '')}${UPSTREAM_VERIFY_PATH}`;
    const target = new URL(this.url);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw new Error('upstream.baseUrl must be an http(s) URL');
    }
    // The upstream takes a bearer token; credentials in the URL would be sent in its stead (and logged by proxies).
    if (target.username || target.password) throw new Error('upstream.baseUrl must not contain credentials');
    // Only an explicit vendor mode is the vendor; anything else is treated as simulated (and said so).
    this.simulated = upstream.mode !== 'vendor';
    // The mode picks the token: a vendor token never goes to the simulated upstream.
    const token = this.simulated ? (config.sandbox.token ?? DEFAULT_SANDBOX_TOKEN) : (upstream.token ?? '');
    this.authorization = `Bearer ${token}`;
    this.httpAgent = new UpstreamHttpAgent(upstream.keepAliveIdleMs);
    this.httpsAgent = new UpstreamHttpsAgent(upstream.keepAliveIdleMs);
    this.retryPolicy = retry(
      handleWhenResult((r) => retryCause(r as AttemptOutcome) !== null),
      {
        maxAttempts: upstream.maxAttempts - 1, // cockatiel counts retries, not attempts
        // Exponential with decorrelated jitter (cockatiel's default generator).
        backoff: new ExponentialBackoff({
          initialDelay: upstream.retryBaseDelayMs,
          maxDelay: upstream.retryMaxDelayMs,
        }),
      },
    );
    this.retryPolicy.onRetry((event) => {
      if ('value' in event) this.metrics.recordRetry(retryCause(event.value as AttemptOutcome) ?? 'other');
    });
  }

  onModuleInit(): void {
    if (this.simulated) {
      this.logger.warn(
        `UPSTREAM_MODE=sandbox: verifications go to the sandbox upstream at ${this.config.upstream.baseUrl}; ` +
          'results are SIMULATED and nothing is charged',
      );
    }
  }

  /** The circuit breaker's state, for readiness and for answering 503 + Retry-After. */
  circuitState(): CircuitView {
    return this.circuit.view();
  }

  async verify(request: UpstreamVerifyRequest, options: VerifyOptions = {}): Promise<UpstreamOutcome> {
    const started = performance.now();
    const body = JSON.stringify(upstreamBody(request));
    let attempts = 0;
    let last: AttemptOutcome | undefined;
    let outcome: AttemptOutcome;
    try {
      outcome = await this.retryPolicy.execute(() =>
        this.circuit.execute(async () => {
          attempts++;
          last = await this.attempt(body, options);
          return last;
        }),
      );
    } catch (err) {
      if (err instanceof CircuitOpenError) {
        // A retry refused by the breaker leaves the previous, not-charged answer standing.
        outcome = last ?? {
          kind: 'unsent',
          reason: 'circuit_open',
          retryAfterSeconds: this.circuit.view().retryAfterSeconds ?? 1,
        };
      } else {
        // Not expected (attempt() catches everything); if a request may have gone out, say so.
        this.logger.error(`Upstream call failed unexpectedly: ${(err as Error).name}`);
        outcome = {
          kind: 'indeterminate',
          reason: 'transport_error',
          httpStatus: null,
          errorCode: null,
          traceId: null,
        };
      }
    }
    const final = { ...outcome, attempts, durationMs: Math.round(performance.now() - started) } as UpstreamOutcome;
    this.metrics.recordOutcome(final);
    this.logOutcome(final);
    return final;
  }

  /** One HTTP request. Never throws. */
  private async attempt(body: string, options: VerifyOptions): Promise<AttemptOutcome> {
    this.metrics.recordAttempt();
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: this.authorization,
      'content-type': 'application/json',
    };
    if (this.simulated && options.sandboxFault) headers['x-sandbox-fault'] = options.sandboxFault;
    const request: AxiosRequestConfig<string> = {
      url: this.url,
      method: 'post',
      data: body,
      headers,
      // A hard deadline on the whole attempt, connecting included (see upstream-adapter.ts). The agents'
      // keep-alive idle time applies to pooled sockets only and never shortens it.
      timeout: this.config.upstream.timeoutMs,
      // The body is JSON text already and the answer is read by interpretResponse: nothing to transform.
      transformRequest: [],
      transformResponse: [],
      // Every status is an answer for interpretResponse; redirects are never followed (the adapter does not).
      validateStatus: null,
      maxContentLength: MAX_RESPONSE_BYTES,
      httpAgent: this.httpAgent,
      httpsAgent: this.httpsAgent,
      adapter: upstreamAdapter,
    };
    try {
      // The HttpModule's axios instance, called directly: HttpService.post() would wrap it in an
      // Observable that makes a CancelToken per call and cancels it after the answer, building a
      // CanceledError (an Error and its stack trace) on every successful call.
      const response = await this.http.axiosRef.request<string>(request);
      const text = typeof response.data === 'string' ? response.data : '';
      return interpretResponse(response.status, response.headers as ResponseHeaders, text);
    } catch (err) {
      // On a reused socket, what the agent saw decides whether the request can have left.
      return interpretTransportError(err, reusedSocketEvidence(err));
    }
  }

  /** Outcome codes and trace ids only: never names, numbers, tokens or the upstream's messages. */
  private logOutcome(outcome: UpstreamOutcome): void {
    const common = `attempts=${outcome.attempts} duration_ms=${outcome.durationMs}`;
    switch (outcome.kind) {
      case 'answered':
        this.logger.debug(`Upstream answered result=${outcome.result} trace_id=${outcome.traceId} ${common}`);
        break;
      case 'rejected': {
        const line = `Upstream rejected status=${outcome.httpStatus} code=${outcome.errorCode} trace_id=${outcome.traceId} ${common}`;
        // 401/402/403 mean our token or account is wrong: an operator must act.
        if (outcome.httpStatus === 429 || outcome.httpStatus === 400) this.logger.warn(line);
        else this.logger.error(line);
        break;
      }
      case 'indeterminate':
        this.logger.warn(
          `Upstream outcome unknown (charge unknown) reason=${outcome.reason} status=${outcome.httpStatus} ` +
            `trace_id=${outcome.traceId} ${common}`,
        );
        break;
      case 'unsent':
        this.logger.warn(`Upstream not called reason=${outcome.reason} ${common}`);
        break;
    }
  }

  onApplicationShutdown(): void {
    // Idle keep-alive sockets only: a call still in flight must be allowed to finish.
    for (const agent of [this.httpAgent, this.httpsAgent]) {
      for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    }
  }
}
