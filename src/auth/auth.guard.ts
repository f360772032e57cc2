import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { auditContextOf } from '../audit/audit-context.decorator';
import { clientAddress, limiterSource } from '../common/client-address';
import { ProblemException } from '../common/problem';
import { AppConfig } from '../config/app-config';
import { safePath } from '../common/safe-path';
import { credentialsFromHeaders, repeatedCredentialHeader, visiblePrefix } from './api-key-secret';
import { ApiKeysService } from './api-keys.service';
import { knownKeyIdentity, presentedKeyIdentity } from './auth-failure-limiter';
import { AuthFailures, Refusal } from './auth-failures.service';
import {
  PUBLIC_METADATA,
  RequestWithPrincipal,
  ROLES_METADATA,
  SHARED_TOKEN_METADATA,
  SharedToken,
} from './authenticated.decorator';
import { KeyRateLimiter } from './rate-limit.guard';
import { Role } from './roles';

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="idgate"' };
const SEND_KEY = 'Send an API key as "Authorization: Bearer <key>" or "X-API-Key".';

type AuthRequest = Request & RequestWithPrincipal;

/** Marks a request whose refusal the guard has already counted (the response hook skips it). */
const COUNTED = Symbol('idgate.refusalCounted');
type Counted = { [COUNTED]?: boolean };

interface RefusalSpec {
  status: 401 | 403;
  reason: string;
  detail: string;
  keyIdentity: string | null;
  subject: string | null;
  keyPrefix: string | null;
  details: Record<string, unknown>;
  challenge?: Record<string, string>;
}

/**
 * Global, default-deny: a route passes only if it declares @Public or
 * @Authenticated and the caller's key has one of the declared roles.
 *
 * Every refusal is counted per client address and per key (AuthFailures): past
 * AUTH_FAILURES_PER_MINUTE the answer is 429, decided before the key is looked up
 * where possible. Refusals are audited (`auth.failed`, `auth.denied`, with the key's
 * visible prefix only, never the key), aggregated per source and minute so that they
 * cannot flood the audit trail. Successful requests are never counted.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger(AuthGuard.name);

  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
    private readonly failures: AuthFailures,
    private readonly rateLimiter: KeyRateLimiter,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    const request = context.switchToHttp().getRequest<AuthRequest>();
    const response = context.switchToHttp().getResponse<Response>();
    this.countLateRefusals(request, response);
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_METADATA, targets)) {
      const token = this.reflector.getAllAndOverride<SharedToken | undefined>(SHARED_TOKEN_METADATA, targets);
      if (token) await this.checkSharedToken(request, token);
      return true;
    }

    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_METADATA, targets);
    if (!roles || roles.length === 0) {
      this.logger.error(
        { route: `${context.getClass().name}.${context.getHandler().name}` },
        'endpoint declares no roles: refused by default',
      );
      return this.refuse(request, {
        status: 403,
        reason: 'no_roles_declared',
        detail: 'This endpoint is not open to any role.',
        keyIdentity: null,
        subject: null,
        keyPrefix: null,
        details: { reason: 'no_roles_declared', key_prefix: null, allowed_roles: [] },
      });
    }

    // The raw header list: Node's parsed headers keep only the first of two Authorization headers.
    const credentials = credentialsFromHeaders(request.headers, request.rawHeaders);
    if (credentials.kind !== 'key') {
      const [reason, detail] =
        credentials.kind === 'none'
          ? ['missing_key', SEND_KEY]
          : credentials.kind === 'malformed'
            ? ['malformed_credentials', `The credentials are malformed. ${SEND_KEY}`]
            : credentials.kind === 'repeated'
              ? [
                  'conflicting_credentials',
                  `The ${credentials.header} header is sent more than once: send one key, once.`,
                ]
              : ['conflicting_credentials', 'Authorization and X-API-Key name different keys: send one key.'];
      return this.refuse(request, {
        status: 401,
        reason,
        detail,
        keyIdentity: null,
        subject: null,
        keyPrefix: null,
        details: {
          reason,
          key_prefix: null,
          ...(credentials.kind === 'conflicting' ? { key_prefixes: credentials.prefixes } : {}),
          ...(credentials.kind === 'repeated' ? { repeated_header: credentials.header } : {}),
        },
        challenge: CHALLENGE,
      });
    }

    const presented = credentials.key;
    const presentedIdentity = presentedKeyIdentity(presented);
    const prefix = visiblePrefix(presented);
    // A key past its failure limit cannot have become valid since (keys are random, revocation is
    // final): it is refused without a lookup.
    const exhausted = await this.failures.keyExhausted(presentedIdentity);
    const { principal, revoked } = exhausted
      ? { principal: null, revoked: false }
      : await this.apiKeys.authenticate(presented);
    if (!principal) {
      const reason = exhausted ? 'repeated_key_failures' : revoked ? 'revoked_key' : 'unknown_key';
      return this.refuse(request, {
        status: 401,
        reason,
        detail: revoked ? 'This API key has been revoked.' : 'Unknown API key.',
        keyIdentity: presentedIdentity,
        // Revoked keys are few and real: summarised per key. Unknown ones are whatever a caller makes up.
        subject: revoked ? presentedIdentity : null,
        keyPrefix: prefix,
        details: { reason, key_prefix: prefix },
        challenge: CHALLENGE,
      });
    }
    request.principal = principal;
    if (!roles.includes(principal.role)) {
      // A refused request still spends the key's request budget: a key at its limit gets 429, not 403.
      await this.rateLimiter.consume(principal, response);
      return this.refuse(request, {
        status: 403,
        reason: 'role_not_allowed',
        detail: `This endpoint is for: ${roles.join(', ')}.`,
        keyIdentity: knownKeyIdentity(principal.keyId),
        subject: principal.keyId,
        keyPrefix: principal.keyPrefix,
        details: { reason: 'role_not_allowed', key_prefix: principal.keyPrefix, allowed_roles: roles },
      });
    }
    return true;
  }

  /** METRICS_TOKEN and the like: required once configured, compared in constant time. */
  private async checkSharedToken(request: AuthRequest, token: SharedToken): Promise<void> {
    const expected = token === 'metrics' ? this.config.http.metricsToken : undefined;
    if (!expected) return;
    const repeated = repeatedCredentialHeader(request.rawHeaders ?? []);
    if (repeated) {
      // As for API keys: which of two Authorization headers is "the" token is not guessed at.
      const reason = 'conflicting_credentials';
      return this.refuse(request, {
        status: 401,
        reason,
        detail: `The ${repeated} header is sent more than once: send the ${token} token once.`,
        keyIdentity: null,
        subject: null,
        keyPrefix: null,
        details: { reason, key_prefix: null, repeated_header: repeated },
        challenge: { 'WWW-Authenticate': `Bearer realm="idgate-${token}"` },
      });
    }
    const auth = request.headers['authorization'];
    const sent = typeof auth === 'string' ? /^bearer[ \t]+(\S+)$/i.exec(auth.trim())?.[1] : undefined;
    if (sent !== undefined && sameSecret(sent, expected)) return;
    const reason = sent === undefined ? `missing_${token}_token` : `invalid_${token}_token`;
    await this.refuse(request, {
      status: 401,
      reason,
      detail: `Send the ${token} token as "Authorization: Bearer <token>".`,
      keyIdentity: null,
      subject: null,
      keyPrefix: null,
      details: { reason, key_prefix: null },
      challenge: { 'WWW-Authenticate': `Bearer realm="idgate-${token}"` },
    });
  }

  /** Counts, audits (aggregated) and throws: 401/403 as specified, or 429 once past the failure limit. */
  private async refuse(request: AuthRequest, spec: RefusalSpec): Promise<never> {
    (request as Counted)[COUNTED] = true;
    const context = auditContextOf(request);
    const refusal: Refusal = {
      action: spec.status === 401 ? 'auth.failed' : 'auth.denied',
      outcome: spec.status === 401 ? 'failure' : 'denied',
      reason: spec.reason,
      context,
      source: limiterSource(context.ip ?? null),
      endpoint: endpointOf(request),
      keyIdentity: spec.keyIdentity,
      subject: spec.subject,
      keyPrefix: spec.keyPrefix,
      details: context.callerRequestId ? { ...spec.details, caller_request_id: context.callerRequestId } : spec.details,
    };
    const verdict = await this.failures.refuse(refusal);
    if (verdict.limited) {
      throw new ProblemException(
        'rate-limited',
        `Too many refused requests from this address or with this key (${this.failures.limit} a minute are ` +
          `answered); try again in ${verdict.retryAfterSeconds} s.`,
        { retry_after_seconds: verdict.retryAfterSeconds },
        { 'Retry-After': String(verdict.retryAfterSeconds) },
      );
    }
    throw new ProblemException(spec.status === 401 ? 'unauthorized' : 'forbidden', spec.detail, {}, spec.challenge);
  }

  /** 401 and 403 answered after the guard (by a handler) count too; such handlers audit their own refusals. */
  private countLateRefusals(request: AuthRequest, response: Response): void {
    response.once('finish', () => {
      if ((response.statusCode !== 401 && response.statusCode !== 403) || (request as Counted)[COUNTED]) return;
      const source = limiterSource(clientAddress(request));
      const key = request.principal ? knownKeyIdentity(request.principal.keyId) : null;
      void this.failures.countOnly(source, key).catch(() => undefined);
    });
  }
}

function endpointOf(request: Request): string {
  const route = (request as Request & { route?: { path?: unknown } }).route?.path;
  // The route template when there is one; otherwise the path with anything that may be personal data or a key redacted.
  return `${request.method} ${typeof route === 'string' ? route : safePath(request.path)}`;
}

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}
