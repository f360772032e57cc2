import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { RequestWithPrincipal } from '../auth/authenticated.decorator';
import type { Principal } from '../auth/roles';
import { AuditActor, AuditContext } from './audit-vocabulary';

export function actorFromPrincipal(principal: Principal): AuditActor {
  return { type: 'api_key', id: principal.keyId, role: principal.role };
}

/** Who is calling and from where, for the audit trail: key id and role, request id, client ip. */
export function auditContextOf(req: Request & RequestWithPrincipal & { id?: unknown }): AuditContext {
  return {
    actor: req.principal ? actorFromPrincipal(req.principal) : { type: 'anonymous', id: null, role: null },
    requestId: typeof req.id === 'string' ? req.id : null,
    ip: req.ip ?? req.socket?.remoteAddress ?? null,
  };
}

/** Injects the AuditContext of the current request (use on @Authenticated endpoints). */
export const CurrentAuditContext = createParamDecorator((_: unknown, ctx: ExecutionContext): AuditContext =>
  auditContextOf(ctx.switchToHttp().getRequest()),
);
