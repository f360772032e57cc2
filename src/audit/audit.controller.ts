import { Body, Controller, Get, HttpCode, Logger, Post, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Authenticated } from '../auth/authenticated.decorator';
import { loggableError } from '../common/problem.filter';
import { ProblemException } from '../common/problem';
import { PiiSearchBudget } from './pii-search-budget.service';
import { CurrentAuditContext } from './audit-context.decorator';
import { AuditService, exportFilterSummary } from './audit.service';
import type { AuditContext } from './audit-vocabulary';
import {
  AuditEventDto,
  AuditEventPageDto,
  AuditEventQueryDto,
  AuditEventSearchDto,
  AuditExportQueryDto,
  filtersFromDto,
} from './dto/audit-event.dto';
import {
  CheckpointDto,
  CheckpointPageDto,
  CheckpointQueryDto,
  IntegrityQueryDto,
  IntegrityReportDto,
  PublicKeyDto,
} from './dto/audit-integrity.dto';
import { streamToResponse } from './stream-response';

@ApiTags('audit')
@Controller('v1/audit')
export class AuditController {
  private readonly logger = new Logger(AuditController.name);
  /** Searches by ID number share the key's hourly budget with verification searches (PII_SEARCH_PER_HOUR). */
  constructor(
    private readonly audit: AuditService,
    private readonly piiSearches: PiiSearchBudget,
  ) {}

  @Get('events')
  @Authenticated({
    roles: ['compliance'],
    summary: 'List audit events, newest first',
    description:
      'Keyset-paginated. Events not sealed yet (a fraction of a second after commit) have seq, hash and prev_hash null.',
  })
  @ApiOkResponse({ type: AuditEventPageDto })
  async list(@Query() query: AuditEventQueryDto): Promise<AuditEventPageDto> {
    const page = await this.audit.listEvents(filtersFromDto(query), query.cursor, query.limit ?? 50);
    return { items: page.items.map(AuditEventDto.from), next_cursor: page.next_cursor };
  }

  @Post('events/search')
  @HttpCode(200)
  @Authenticated({
    roles: ['compliance'],
    summary: 'Search audit events (same filters, plus an ID number)',
    description:
      'The ID number is matched through its HMAC and never stored; a search by ID number is itself audited and spends ' +
      'one of the key’s PII_SEARCH_PER_HOUR exact-match searches (shared with POST /v1/verifications/search): ' +
      'beyond them, 429 and a security alert.',
  })
  @ApiOkResponse({ type: AuditEventPageDto })
  async search(
    @Body() body: AuditEventSearchDto,
    @CurrentAuditContext() context: AuditContext,
  ): Promise<AuditEventPageDto> {
    const filters = filtersFromDto(body);
    if (body.id_card !== undefined) {
      filters.idCardHmac = this.audit.idCardHmac(body.id_card);
      await this.piiSearches.spend(context, {
        action: 'audit.searched',
        idCardHmac: filters.idCardHmac,
        details: { filters: exportFilterSummary(filters), by_id_card: true },
      });
    }
    const page = await this.audit.listEvents(filters, body.cursor, body.limit ?? 50);
    return { items: page.items.map(AuditEventDto.from), next_cursor: page.next_cursor };
  }

  @Get('events/export')
  @Authenticated({
    roles: ['compliance'],
    summary: 'Export audit events (NDJSON with signed checkpoints, or CSV), streamed',
    description:
      'Streams any range in chain order without loading it into memory. The NDJSON form can be verified offline with ' +
      '`idgate audit verify --file` or docs/verify-audit-export.mjs. Exports are themselves audited.',
  })
  @ApiProduces('application/x-ndjson', 'text/csv')
  @ApiOkResponse({ description: 'The export stream.' })
  async export(
    @Query() query: AuditExportQueryDto,
    @CurrentAuditContext() context: AuditContext,
    @Res() res: Response,
  ): Promise<void> {
    const format = query.format ?? 'ndjson';
    const range = { ...filtersFromDto(query), fromSeq: query.from_seq, toSeq: query.to_seq };
    if (range.fromSeq !== undefined && range.toSeq !== undefined && range.fromSeq > range.toSeq) {
      throw new ProblemException('validation', 'to_seq: must not be below from_seq', {
        errors: [{ field: 'to_seq', message: 'must not be below from_seq' }],
      });
    }
    await this.audit.recordStandalone(context, {
      action: 'audit.exported',
      details: { format, filters: exportFilterSummary(range) },
    });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
    res.status(200);
    res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="idgate-audit-${stamp}.${format}"`);
    res.setHeader('Cache-Control', 'no-store');
    try {
      await streamToResponse(res, this.audit.exportEvents(range, format));
    } catch (err) {
      // Headers are gone: cut the stream so the client sees a truncated export (the NDJSON end line is missing).
      this.logger.error({ err: loggableError(err) }, 'audit export failed mid-stream');
      res.destroy();
    }
  }

  @Get('integrity')
  @Authenticated({
    roles: ['compliance', 'admin'],
    summary: 'Verify the hash chain, its signed checkpoints, and the witness',
    description:
      'Walks the chain in seq order in constant memory and reports the first broken seq, comparing it with the ' +
      'witness records kept outside the database (AUDIT_WITNESS_DIR, AUDIT_WITNESS_URL): a record the chain no longer ' +
      'matches, a record above its end, a checkpoint missing, added or different, a gap in the witness history. ' +
      'status "attention" (ok stays true) reports late or missing evidence: checkpoint cadence gaps, a lagging witness.',
  })
  @ApiOkResponse({ type: IntegrityReportDto })
  async integrity(@Query() query: IntegrityQueryDto): Promise<IntegrityReportDto> {
    return IntegrityReportDto.from(await this.audit.verifyChain({ fromSeq: query.from_seq, toSeq: query.to_seq }));
  }

  @Get('checkpoints')
  @Authenticated({ roles: ['compliance', 'admin'], summary: 'List signed checkpoints of the chain, newest first' })
  @ApiOkResponse({ type: CheckpointPageDto })
  async checkpoints(@Query() query: CheckpointQueryDto): Promise<CheckpointPageDto> {
    const page = await this.audit.listCheckpoints(query.cursor, query.limit ?? 50);
    return { items: page.items.map(CheckpointDto.from), next_cursor: page.next_cursor };
  }

  @Post('checkpoints')
  @Authenticated({
    roles: ['compliance', 'admin'],
    summary: 'Seal pending events and sign the chain head now',
    description:
      '201 with the new checkpoint, or 200 with the existing one when the head was already signed. 409 when the ' +
      'chain does not verify from the witness’s latest record: nothing is signed, and an audit_chain_broken alert is raised.',
  })
  @ApiCreatedResponse({ type: CheckpointDto })
  @ApiOkResponse({ type: CheckpointDto, description: 'The head was already signed.' })
  async signCheckpoint(
    @CurrentAuditContext() context: AuditContext,
    @Res({ passthrough: true }) res: Response,
  ): Promise<CheckpointDto> {
    const signed = await this.audit.signCheckpoint(context);
    if (!signed) throw new ProblemException('conflict', 'The audit chain is empty: there is nothing to sign yet.');
    if (!signed.created) res.status(200);
    return CheckpointDto.from(signed.checkpoint);
  }

  @Get('public-key')
  @Authenticated({
    roles: ['compliance', 'admin'],
    summary: 'The Ed25519 public key that signs checkpoints',
    description: 'Pin it (or its key_id) to verify exports offline.',
  })
  @ApiOkResponse({ type: PublicKeyDto })
  publicKey(): PublicKeyDto {
    return PublicKeyDto.from(this.audit.publicKey());
  }
}
