import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiOperation, ApiSecurity } from '@nestjs/swagger';
import { ApiProblems, ApiUpstreamStyleErrors, ErrorStyle, ProblemDocs, REQUEST_PROBLEMS } from '../common/api-problems';
import { Principal, Role } from './roles';

export const ROLES_METADATA = 'idgate:roles';
export const PUBLIC_METADATA = 'idgate:public';
export const SHARED_TOKEN_METADATA = 'idgate:shared-token';

export interface AuthenticatedOptions {
  roles: Role[];
  summary: string;
  description?: string;
  /** The operation's own error answers (besides the ones every authenticated request can get). */
  errors?: ProblemDocs;
  /** The error body it speaks: problem+json, or the upstream's shape (the drop-in). */
  errorStyle?: ErrorStyle;
}

/** What every request with an API key can be answered, whatever the endpoint. */
function authenticationProblems(roles: Role[]): ProblemDocs {
  return {
    401: [
      {
        description: 'No API key was sent,',
        detail: 'Send an API key as "Authorization: Bearer <key>" or "X-API-Key".',
      },
      { description: 'or it is unknown or revoked,', detail: 'Unknown API key.' },
      {
        description: 'or two different keys were sent (Authorization and X-API-Key, or a header twice).',
        detail: 'Authorization and X-API-Key name different keys: send one key.',
      },
    ],
    403: {
      description: `The key's role is not one of: ${roles.join(', ')}.`,
      detail: `This endpoint is for: ${roles.join(', ')}.`,
    },
    429: [
      {
        description:
          'The key made more requests this minute than RATE_LIMIT_PER_MINUTE allows (Retry-After says when to retry),',
        detail: 'This API key may make 6000 requests per 60 s.',
        extensions: { retry_after_seconds: 12 },
      },
      {
        description: 'or too many refused requests came from this address or with this key.',
        detail:
          'Too many refused requests from this address or with this key (20 a minute are answered); try again in 30 s.',
      },
    ],
  };
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
    (options.errorStyle === 'upstream' ? ApiUpstreamStyleErrors : ApiProblems)(
      REQUEST_PROBLEMS,
      authenticationProblems(roles),
      options.errors ?? {},
    ),
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
    ApiProblems({
      401: {
        description: 'The token is configured and was not sent, or is wrong.',
        detail: 'Send the metrics token as "Authorization: Bearer <token>".',
      },
      429: {
        description: 'Too many refused requests from this address: answered 429 until the minute passes.',
        detail:
          'Too many refused requests from this address or with this key (20 a minute are answered); try again in 30 s.',
      },
    }),
  );
}

export type RequestWithPrincipal = { principal?: Principal };

/** The caller of the current request, set by the guard. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<RequestWithPrincipal>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on an endpoint without @Authenticated');
  return principal;
});
