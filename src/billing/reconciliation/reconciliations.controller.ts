import { Controller, Get, Param, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProduces,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
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
import { ReconciliationService } from './reconciliation.service';
import { STATEMENT_HEADER } from './statement-rules';
import { openStatementUpload } from './statement-upload';

@ApiTags('billing')
@ApiExtraModels(AmountPairDto)
@Controller('v1/billing/reconciliations')
export class ReconciliationsController {
  constructor(private readonly reconciliations: ReconciliationService) {}

  @Post()
  @Authenticated({
    roles: ['finance'],
    summary: 'Reconcile the vendor statement against our charges',
    description:
      `Upload the statement CSV (header \`${STATEMENT_HEADER}\`, any size, streamed) as multipart/form-data field \`file\` ` +
      'or as a text/csv body. Every line is matched by trace id; unknown charges of ours that the statement settles become ' +
      'charged / not charged (audited). A file that is not a statement is refused with 400 and nothing is stored; malformed ' +
      'lines are reported with their line number. Re-running the same statement gives the same counts and settles nothing.',
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
  })
  @ApiCreatedResponse({ type: ReconciliationDto })
  @ApiBadRequestResponse({ description: 'Not a statement (header), or a bad period (problem+json naming the field).' })
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
  @Authenticated({ roles: ['finance', 'admin'], summary: 'A reconciliation: counts, amounts and settlements' })
  @ApiOkResponse({ type: ReconciliationDto })
  @ApiNotFoundResponse({ description: 'No such reconciliation.' })
  get(@Param('id', uuidParam('id')) id: string): Promise<ReconciliationDto> {
    return this.reconciliations.summary(id);
  }

  @Get(':id/items')
  @Authenticated({ roles: ['finance', 'admin'], summary: 'The items of a reconciliation, in report order' })
  @ApiOkResponse({ type: ReconciliationItemPageDto })
  @ApiNotFoundResponse({ description: 'No such reconciliation.' })
  items(
    @Param('id', uuidParam('id')) id: string,
    @Query() query: ReconciliationItemsQueryDto,
  ): Promise<ReconciliationItemPageDto> {
    return this.reconciliations.items(id, query.status, query.cursor, query.limit ?? 50);
  }

  @Get(':id/export')
  @Authenticated({ roles: ['finance', 'admin'], summary: 'Export a reconciliation’s items as CSV (streamed)' })
  @ApiProduces('text/csv')
  @ApiOkResponse({ description: 'CSV with one row per item, in report order.' })
  @ApiNotFoundResponse({ description: 'No such reconciliation.' })
  async export(
    @Param('id', uuidParam('id')) id: string,
    @Query() query: ReconciliationExportQueryDto,
    @Res() res: Response,
  ): Promise<void> {
    const chunks = this.reconciliations.exportCsv(id, query.status);
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
