import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiExtension,
  ApiForbiddenResponse,
  ApiOperation,
  ApiSecurity,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Principal, Role } from './roles';

export const ROLES_METADATA = 'idgate:roles';
export const PUBLIC_METADATA = 'idgate:public';
export const SHARED_TOKEN_METADATA = 'idgate:shared-token';

export interface AuthenticatedOptions {
  roles: Role[];
  summary: string;
  description?: string;
}

/**
 * Declares who may call an endpoint. The same declaration feeds the guard and
 * the OpenAPI document, so the docs cannot say something the guard does not do.
 * An endpoint without it (or @Public) is refused by the guard.
 */
export function Authenticated(options: AuthenticatedOptions): MethodDecorator & ClassDecorator {
  const roles = [...options.roles];
  const rolesLine = `Roles: ${roles.join(', ')}.`;
  return applyDecorators(
    SetMetadata(ROLES_METADATA, roles),
    ApiBearerAuth('bearer'),
    ApiSecurity('api-key'),
    ApiExtension('x-idgate-roles', roles),
    ApiOperation({
      summary: options.summary,
      description: options.description ? `${options.description}\n\n${rolesLine}` : rolesLine,
    }),
    ApiUnauthorizedResponse({ description: 'Missing, unknown or revoked API key (problem+json).' }),
    ApiForbiddenResponse({ description: `The key's role is not one of: ${roles.join(', ')} (problem+json).` }),
  );
}

/** An endpoint anyone may call (health probes). */
export function Public(summary: string): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(PUBLIC_METADATA, true),
    ApiExtension('x-idgate-roles', ['public']),
    ApiOperation({ summary, description: 'Public: no API key needed.' }),
  );
}

/** Shared tokens from configuration that machine endpoints may require instead of an API key. */
export type SharedToken = 'metrics';

/**
 * An endpoint for machines (a Prometheus scraper) that needs no API key but, once the
 * shared token is configured (METRICS_TOKEN), requires `Authorization: Bearer <token>`.
 * The AuthGuard checks it, so a wrong token is refused, counted and audited like a bad key.
 */
export function SharedTokenProtected(token: SharedToken, summary: string, description: string) {
  return applyDecorators(
    SetMetadata(PUBLIC_METADATA, true),
    SetMetadata(SHARED_TOKEN_METADATA, token),
    ApiExtension('x-idgate-roles', ['public']),
    ApiBearerAuth('bearer'),
    ApiOperation({ summary, description }),
    ApiUnauthorizedResponse({ description: 'The token is configured and was not sent, or is wrong (problem+json).' }),
  );
}

export type RequestWithPrincipal = { principal?: Principal };

/** The caller of the current request, set by the guard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<RequestWithPrincipal>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on an endpoint without @Authenticated');
  return principal;
});
