import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import type { RequestWithPrincipal } from '../auth/authenticated.decorator';
import type { Principal } from '../auth/roles';
import { clientAddress } from '../common/client-address';
import { requestIdsOf } from '../common/request-id';
import { AuditActor, AuditContext } from './audit-vocabulary';

export function actorFromPrincipal(principal: Principal): AuditActor {
  return { type: 'api_key', id: principal.keyId, role: principal.role };
}

/** An AuditContext from an HTTP request, with the caller's own request id beside idgate's. */
export interface RequestAuditContext extends AuditContext {
  /** The caller's X-Request-Id when kept (see request-id.ts): a correlation token, not unique. */
  callerRequestId: string | null;
}

/**
 * Who is calling and from where, for the audit trail: key id and role, idgate's own
 * request id (unique; never the caller's X-Request-Id, which anyone can repeat), and the
 * client's address (behind a trusted proxy, the address it forwarded).
 */
export function auditContextOf(req: Request & RequestWithPrincipal): RequestAuditContext {
  const ids = requestIdsOf(req);
  return {
    actor: req.principal ? actorFromPrincipal(req.principal) : { type: 'anonymous', id: null, role: null },
    requestId: ids.own,
    ip: clientAddress(req),
    callerRequestId: ids.caller,
  };
}

/** Injects the AuditContext of the current request (use on @Authenticated endpoints). */
export const CurrentAuditContext = createParamDecorator((_: unknown, ctx: ExecutionContext): AuditContext =>
  auditContextOf(ctx.switchToHttp().getRequest()),
);
