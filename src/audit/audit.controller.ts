import { Body, Controller, Get, HttpCode, Logger, Post, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Authenticated } from '../auth/authenticated.decorator';
import { loggableError } from '../common/problem.filter';
import { ProblemException } from '../common/problem';
import { PiiSearchBudget } from './pii-search-budget.service';
import { BODY_PROBLEMS, PAGE_QUERY_PROBLEM } from '../common/api-problems';
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

/** Real exports of one event (examples in the API docs). */
const EXPORT_NDJSON_EXAMPLE =
  '{"type":"header","format":"idgate.audit-export","version":2,"exported_at":"2026-11-30T21:32:45.386Z","filters":{"from_seq":2,"to_seq":2},"complete":true,"canonical":"hash = sha256_hex(prev_hash + \\"\\\\n\\" + canonical_json(event)); see docs/audit.md. Genesis prev_hash: 64 zeros.","public_key":{"key_id":"0449c4e9d8027576","algorithm":"Ed25519","pem":"-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAQLDuxmT7ioNmrprIcrzP8RiT0T+isFbDqtWOCJU8A6s=\\n-----END PUBLIC KEY-----\\n","jwk":{"kty":"OKP","crv":"Ed25519","x":"QLDuxmT7ioNmrprIcrzP8RiT0T-isFbDqtWOCJU8A6s"}}}\n{"type":"event","id":"01a22e5b-c580-77df-ba7b-bd9bc97ee705","seq":2,"occurred_at":"2026-11-30T21:28:16.003Z","actor":{"type":"system","id":"bootstrap","role":null},"action":"api_key.created","target":{"type":"api_key","id":"01a22e5b-c568-7330-ae02-ec477cbea946"},"outcome":"success","request_id":null,"ip":null,"details":{"role":"admin","label":"bootstrap admin","client_id":null,"key_prefix":"idg_test_H8bEowPl"},"id_card_hmac":null,"prev_hash":"05a988363c403af906e8e13d6c12a7250cc8aed625300c8aaa69e23dc8f8f3a7","hash":"49257054edff4a8dc0bbed5a241ec0430f2c1fb8b14c6039b825ebddd51c69cb"}\n{"type":"checkpoint","seq":2,"hash":"49257054edff4a8dc0bbed5a241ec0430f2c1fb8b14c6039b825ebddd51c69cb","signed_at":"2026-11-30T21:29:15.637Z","key_id":"0449c4e9d8027576","signature":"Gw7ATE9vFXwoKFEqajm5+mfquAtFnBDRA2lQnYrucZtFLfO3XVDniOGux4nh306UyShFLS92vN9vBjACkk8uCQ==","version":2,"prev":"6adacc2cdbd8897b64abfa4acbe3c815743da9baf07f3bc24a5712577afef32d"}\n{"type":"end","events":1,"checkpoints":1}\n';
const EXPORT_CSV_EXAMPLE =
  'seq,id,occurred_at,actor_type,actor_id,actor_role,action,target_type,target_id,outcome,request_id,ip,details,id_card_hmac,prev_hash,hash\n2,01a22e5b-c580-77df-ba7b-bd9bc97ee705,2026-11-30T21:28:16.003Z,system,bootstrap,,api_key.created,api_key,01a22e5b-c568-7330-ae02-ec477cbea946,success,,,"{""role"":""admin"",""label"":""bootstrap admin"",""client_id"":null,""key_prefix"":""idg_test_H8bEowPl""}",,05a988363c403af906e8e13d6c12a7250cc8aed625300c8aaa69e23dc8f8f3a7,49257054edff4a8dc0bbed5a241ec0430f2c1fb8b14c6039b825ebddd51c69cb\n';

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
    errors: {
      400: [
        PAGE_QUERY_PROBLEM,
        {
          description: 'A filter is malformed.',
          errors: [
            {
              field: 'from',
              message: 'must be an ISO 8601 date-time with a zone such as 2026-01-01T00:00:00Z, or a date YYYY-MM-DD',
            },
          ],
        },
      ],
    },
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
    errors: {
      ...BODY_PROBLEMS,
      400: {
        description: 'A filter is malformed, or the body names an unknown one.',
        errors: [{ field: 'id_card', message: 'must be a string' }],
      },
      429: {
        description: 'The key’s exact-match searches this hour (PII_SEARCH_PER_HOUR) are spent.',
        detail: 'This API key has used its 100 searches by ID number or name for this hour.',
        extensions: { retry_after_seconds: 1800 },
      },
    },
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
    errors: {
      400: {
        description: 'A filter or the seq range is malformed.',
        errors: [{ field: 'to_seq', message: 'must not be below from_seq' }],
      },
    },
  })
  @ApiOkResponse({
    description:
      'The export stream. NDJSON: a header line (format, filters, the public key), one line per event in seq order, each ' +
      'signed checkpoint right after the event at its seq, and an end line (absent: the file was cut). CSV: one row per event.',
    content: {
      'application/x-ndjson': { schema: { type: 'string' }, example: EXPORT_NDJSON_EXAMPLE },
      'text/csv': { schema: { type: 'string' }, example: EXPORT_CSV_EXAMPLE },
    },
  })
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
    errors: {
      400: {
        description: 'The seq range is malformed.',
        errors: [{ field: 'from_seq', message: 'must not be less than 1' }],
      },
    },
  })
  @ApiOkResponse({ type: IntegrityReportDto })
  async integrity(@Query() query: IntegrityQueryDto): Promise<IntegrityReportDto> {
    return IntegrityReportDto.from(await this.audit.verifyChain({ fromSeq: query.from_seq, toSeq: query.to_seq }));
  }

  @Get('checkpoints')
  @Authenticated({
    roles: ['compliance', 'admin'],
    summary: 'List signed checkpoints of the chain, newest first',
    errors: { 400: PAGE_QUERY_PROBLEM },
  })
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
    errors: {
      409: [
        {
          description:
            'The chain does not verify from the witness’s latest record (`first_bad_seq`): nothing is signed,',
          detail:
            "The audit chain does not verify from the witness's latest record (seq 1042: the event this chain entry seals is missing (deleted)): nothing was signed.",
          extensions: { first_bad_seq: 1042 },
        },
        { description: 'or the chain is empty.', detail: 'The audit chain is empty: there is nothing to sign yet.' },
      ],
    },
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
