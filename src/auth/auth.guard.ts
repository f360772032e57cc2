import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { auditContextOf } from '../audit/audit-context.decorator';
import { AuditService } from '../audit/audit.service';
import { ProblemException } from '../common/problem';
import { keyFromHeaders, visiblePrefix } from './api-key-secret';
import { ApiKeysService } from './api-keys.service';
import { PUBLIC_METADATA, RequestWithPrincipal, ROLES_METADATA } from './authenticated.decorator';
import { Role } from './roles';

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="idgate"' };

type AuthFailure = 'missing_key' | 'unknown_key' | 'revoked_key';

/**
 * Global, default-deny: a route passes only if it declares @Public or
 * @Authenticated and the caller's key has one of the declared roles.
 * Every refusal is audited (`auth.failed`, `auth.denied`) with the key's
 * visible prefix only, never the key.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger(AuthGuard.name);

  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_METADATA, targets)) return true;

    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_METADATA, targets);
    const request = context.switchToHttp().getRequest<Request & RequestWithPrincipal>();
    if (!roles || roles.length === 0) {
      await this.recordDenied(request, [], 'no_roles_declared');
      this.logger.error(
        { route: `${context.getClass().name}.${context.getHandler().name}` },
        'endpoint declares no roles: refused by default',
      );
      throw new ProblemException('forbidden', 'This endpoint is not open to any role.');
    }

    const presented = keyFromHeaders(request.headers);
    if (!presented) {
      await this.recordFailed(request, 'missing_key', null);
      throw new ProblemException(
        'unauthorized',
        'Send an API key as "Authorization: Bearer <key>" or "X-API-Key".',
        {},
        CHALLENGE,
      );
    }
    const { principal, revoked } = await this.apiKeys.authenticate(presented);
    if (!principal) {
      await this.recordFailed(request, revoked ? 'revoked_key' : 'unknown_key', visiblePrefix(presented));
      throw new ProblemException(
        'unauthorized',
        revoked ? 'This API key has been revoked.' : 'Unknown API key.',
        {},
        CHALLENGE,
      );
    }
    request.principal = principal;
    if (!roles.includes(principal.role)) {
      await this.recordDenied(request, roles, 'role_not_allowed');
      throw new ProblemException('forbidden', `This endpoint is for: ${roles.join(', ')}.`);
    }
    return true;
  }

  private endpoint(request: Request): { type: string; id: string } {
    const route = (request as Request & { route?: { path?: unknown } }).route?.path;
    return { type: 'endpoint', id: `${request.method} ${typeof route === 'string' ? route : request.path}` };
  }

  private recordFailed(request: Request & RequestWithPrincipal, reason: AuthFailure, keyPrefix: string | null) {
    return this.audit.recordBestEffort(auditContextOf(request), {
      action: 'auth.failed',
      outcome: 'failure',
      target: this.endpoint(request),
      details: { reason, key_prefix: keyPrefix },
    });
  }

  private recordDenied(request: Request & RequestWithPrincipal, roles: Role[], reason: string) {
    return this.audit.recordBestEffort(auditContextOf(request), {
      action: 'auth.denied',
      outcome: 'denied',
      target: this.endpoint(request),
      details: { reason, key_prefix: request.principal?.keyPrefix ?? null, allowed_roles: roles },
    });
  }
}
