import { Controller, Get, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiCreatedResponse, ApiExtraModels, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ID_PARAM_PROBLEM, NOT_FOUND_BY_ID, PAGE_QUERY_PROBLEM } from '../../common/api-problems';
import { CurrentAuditContext } from '../../audit/audit-context.decorator';
import type { AuditContext } from '../../audit/audit-vocabulary';
import { streamToResponse } from '../../audit/stream-response';
import { Authenticated, CurrentPrincipal } from '../../auth/authenticated.decorator';
import type { Principal } from '../../auth/roles';
import { uuidParam } from '../../common/params';
import {
  AmountPairDto,
  ReconcileQueryDto,
  ReconciliationDto,
  ReconciliationExportQueryDto,
  ReconciliationItemPageDto,
  ReconciliationItemsQueryDto,
} from '../dto/reconciliation.dto';
import { ReconciliationReport } from './reconciliation-report';
import { ReconciliationService } from './reconciliation.service';
import { STATEMENT_HEADER } from './statement-rules';
import { openStatementUpload } from './statement-upload';

/** A real export of a two-line statement that matched nothing of ours (an example in the API docs). */
const RECONCILIATION_CSV_EXAMPLE =
  'seq,line_no,status,trace_id,called_at,vendor_result,vendor_charged,vendor_amount,verification_id,match_method,internal_charge_status,internal_result,internal_amount,settlement,problem\n2,2,missing_internal,6f1c2e0a-9b8d-4c3e-a1f2-3d4e5f6a7b8c,2026-11-30T09:15:02.000Z,0,true,50,,,,,,,\n3,3,missing_internal,0b7e4d21-5c6a-4f89-9e3d-2a1b0c9d8e7f,2026-11-30T09:15:05.000Z,-2,false,0,,,,,,,\n';

const RECONCILIATION_NOT_FOUND = NOT_FOUND_BY_ID('reconciliation', 'No such reconciliation.');

@ApiTags('billing')
@ApiExtraModels(AmountPairDto)
@Controller('v1/billing/reconciliations')
export class ReconciliationsController {
  constructor(
    private readonly reconciliations: ReconciliationService,
    /** Reads for the API (summary, items, export). */
    private readonly report: ReconciliationReport,
  ) {}

  @Post()
  @Authenticated({
    roles: ['finance'],
    summary: 'Reconcile the vendor statement against our charges',
    description:
      `Upload the statement CSV (header \`${STATEMENT_HEADER}\`, any size, streamed) as multipart/form-data field \`file\` ` +
      'or as a text/csv body. Every line is matched by trace id; unknown charges of ours that the statement settles become ' +
      'charged / not charged (audited). A file that is not a statement is refused with 400 and nothing is stored; malformed ' +
      'lines are reported with their line number. Re-running the same statement gives the same counts and settles nothing.',
    errors: {
      400: {
        description: 'Not a statement (its header), or a malformed period (the field named).',
        errors: [
          { field: 'file', message: `is not a vendor statement: the first line must be exactly ${STATEMENT_HEADER}` },
        ],
      },
      413: {
        description: 'A multipart field or part count beyond the limits (the statement itself may be any size).',
        detail: 'The body exceeds the limit of 5242880 bytes.',
      },
      415: {
        description: 'Neither multipart/form-data nor text/csv.',
        detail: 'Send the statement as multipart/form-data (field `file`) or as a text/csv body.',
      },
      429: {
        description:
          'Other statements are being read or matched on this instance; nothing was stored (Retry-After: 60).',
        detail: 'Other statements are being reconciled on this instance; nothing was stored. Retry in a minute.',
      },
      503: {
        description: 'Another statement is still being matched; nothing was stored (Retry-After: 60).',
        detail: 'Another statement is still being matched; retry later.',
      },
    },
  })
  @ApiConsumes('multipart/form-data', 'text/csv')
  @ApiBody({
    description: 'The vendor statement.',
    schema: {
      type: 'object',
      required: ['file'],
      properties: {
        file: { type: 'string', format: 'binary', description: 'The statement CSV.' },
        from: { type: 'string', description: 'Optional period start (before the file part).' },
        to: { type: 'string', description: 'Optional period end (before the file part).' },
      },
    },
    examples: {
      statement: {
        summary: 'A vendor statement (the text/csv body, or the content of the `file` part)',
        value:
          `${STATEMENT_HEADER}\n` +
          '6f1c2e0a-9b8d-4c3e-a1f2-3d4e5f6a7b8c,2026-11-30T09:15:02Z,0,true,50\n' +
          '0b7e4d21-5c6a-4f89-9e3d-2a1b0c9d8e7f,2026-11-30T09:15:05Z,-2,false,0\n',
      },
    },
  })
  @ApiCreatedResponse({ type: ReconciliationDto })
  async create(
    @Req() req: Request,
    @Query() query: ReconcileQueryDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<ReconciliationDto> {
    const upload = await openStatementUpload(req);
    const period = { from: query.from ?? upload.fields.from, to: query.to ?? upload.fields.to };
    return this.reconciliations.reconcile(upload, period, principal, context);
  }

  @Get(':id')
  @Authenticated({
    roles: ['finance', 'admin'],
    summary: 'A reconciliation: counts, amounts and settlements',
    errors: { 400: ID_PARAM_PROBLEM, 404: RECONCILIATION_NOT_FOUND },
  })
  @ApiOkResponse({ type: ReconciliationDto })
  get(@Param('id', uuidParam('id')) id: string): Promise<ReconciliationDto> {
    return this.report.summary(id);
  }

  @Get(':id/items')
  @Authenticated({
    roles: ['finance', 'admin'],
    summary: 'The items of a reconciliation, in report order',
    errors: { 400: [ID_PARAM_PROBLEM, PAGE_QUERY_PROBLEM], 404: RECONCILIATION_NOT_FOUND },
  })
  @ApiOkResponse({ type: ReconciliationItemPageDto })
  items(
    @Param('id', uuidParam('id')) id: string,
    @Query() query: ReconciliationItemsQueryDto,
  ): Promise<ReconciliationItemPageDto> {
    return this.report.items(id, query.status, query.cursor, query.limit ?? 50);
  }

  @Get(':id/export')
  @Authenticated({
    roles: ['finance', 'admin'],
    summary: 'Export a reconciliation’s items as CSV (streamed)',
    errors: { 400: ID_PARAM_PROBLEM, 404: RECONCILIATION_NOT_FOUND },
  })
  @ApiOkResponse({
    description: 'CSV with one row per item, in report order.',
    content: { 'text/csv': { schema: { type: 'string' }, example: RECONCILIATION_CSV_EXAMPLE } },
  })
  async export(
    @Param('id', uuidParam('id')) id: string,
    @Query() query: ReconciliationExportQueryDto,
    @Res() res: Response,
  ): Promise<void> {
    const chunks = this.report.exportCsv(id, query.status);
    // Pull the first chunk before answering, so an unknown id is still a 404 problem.
    const first = await chunks.next();
    res.status(200);
    res.type('text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="reconciliation-${id}.csv"`);
    await streamToResponse(res, prepend(first.done ? undefined : first.value, chunks));
  }
}

async function* prepend(first: string | undefined, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  if (first !== undefined) yield first;
  yield* rest;
}
