import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ProblemException } from '../common/problem';
import { keyFromHeaders } from './api-key-secret';
import { ApiKeysService } from './api-keys.service';
import { PUBLIC_METADATA, RequestWithPrincipal, ROLES_METADATA } from './authenticated.decorator';
import { Role } from './roles';

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="idgate"' };

/**
 * Global, default-deny: a route passes only if it declares @Public or
 * @Authenticated and the caller's key has one of the declared roles.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger(AuthGuard.name);

  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return false;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_METADATA, targets)) return true;

    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_METADATA, targets);
    if (!roles || roles.length === 0) {
      this.logger.error(
        { route: `${context.getClass().name}.${context.getHandler().name}` },
        'endpoint declares no roles: refused by default',
      );
      throw new ProblemException('forbidden', 'This endpoint is not open to any role.');
    }

    const request = context.switchToHttp().getRequest<Request & RequestWithPrincipal>();
    const presented = keyFromHeaders(request.headers);
    if (!presented) {
      throw new ProblemException(
        'unauthorized',
        'Send an API key as "Authorization: Bearer <key>" or "X-API-Key".',
        {},
        CHALLENGE,
      );
    }
    const { principal, revoked } = await this.apiKeys.authenticate(presented);
    if (!principal) {
      throw new ProblemException(
        'unauthorized',
        revoked ? 'This API key has been revoked.' : 'Unknown API key.',
        {},
        CHALLENGE,
      );
    }
    request.principal = principal;
    if (!roles.includes(principal.role)) {
      throw new ProblemException('forbidden', `This endpoint is for: ${roles.join(', ')}.`);
    }
    return true;
  }
}
