#!/usr/bin/env node
import '../compile-cache';
import { INestApplicationContext, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command, CommanderError, Option } from 'commander';
import { Logger } from 'nestjs-pino';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { AuditIntegrity, IntegrityReport } from '../audit/audit-integrity.service';
import { AuditService } from '../audit/audit.service';
import { SYSTEM_CLI } from '../audit/audit-vocabulary';
import { publicKeyFromPem, publicKeyId } from '../audit/checkpoint';
import { ExportAnchorSpec, ExportVerification, ExportVerifier } from '../audit/export-format';
import type { Anchor } from '../audit/witness/anchor-comparison';
import { AnchorFeed, folderFeed, listFeed } from '../audit/witness/anchor-feed';
import { parseTrustedCheckpoints } from '../audit/witness/trusted-checkpoints';
import { WitnessDir } from '../audit/witness/witness-dir';
import { ApiKeysService } from '../auth/api-keys.service';
import { ClientsService } from '../auth/clients.service';
import { ROLES, Role } from '../auth/roles';
import { prepareRuntime, Runtime } from '../bootstrap';
import { ProblemException } from '../common/problem';
import { ConfigError } from '../config/environment';
import { writeMigration } from '../database/migrations';
import type { PiiMaintenanceService } from '../verification/pii-maintenance.service';
import { CliModule } from './cli.module';

/*
 * `npm run cli -- <command>` / `idgate <command>`. Uses DATABASE_URL, or the
 * embedded PostgreSQL under ./.data (the running server's, if one is up).
 * With --json the last line of stdout is one JSON object.
 */

const out = (line: string): void => {
  process.stdout.write(line + '\n');
};

async function withServices<T>(
  fn: (ctx: INestApplicationContext, runtime: Runtime) => Promise<T>,
  extraModules: Type[] = [],
): Promise<T> {
  const runtime = await prepareRuntime(process.env);
  let ctx: INestApplicationContext | undefined;
  try {
    ctx = await NestFactory.createApplicationContext(CliModule.forRoot(runtime.config, extraModules), {
      bufferLogs: true,
    });
    ctx.useLogger(ctx.get(Logger));
    return await fn(ctx, runtime);
  } finally {
    await ctx?.close();
    await runtime.stop();
  }
}

function table(rows: Record<string, string>[]): void {
  if (rows.length === 0) return out('(none)');
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  out(cols.map((c, i) => c.toUpperCase().padEnd(width[i])).join('  '));
  for (const r of rows) out(cols.map((c, i) => r[c].padEnd(width[i])).join('  '));
}

export function buildCli(): Command {
  const program = new Command('idgate').description('idgate maintenance CLI').exitOverride();

  const keys = program.command('keys').description('manage API keys');
  keys
    .command('create')
    .description('create an API key; the key is printed once')
    .addOption(new Option('--role <role>', 'role of the key').choices([...ROLES]).makeOptionMandatory())
    .requiredOption('--name <name>', 'label for people')
    .option('--client <client>', 'client app a client key belongs to (created if new)')
    .option('--json', 'print one JSON object on the last line')
    .action(async (opts: { role: Role; name: string; client?: string; json?: boolean }) => {
      // Named in the CLI's own words: the service behind it would say `client_id`.
      if (opts.role === 'client' && !opts.client?.trim())
        throw new CliError('--client: a client key needs --client NAME (the client app; created if it does not exist)');
      if (opts.role !== 'client' && opts.client !== undefined)
        throw new CliError(`--client: only a client key belongs to a client app, not a ${opts.role} key`);
      await withServices(async (ctx) => {
        const client = opts.client
          ? await ctx.get(ClientsService).findOrCreateClient(opts.client.trim(), SYSTEM_CLI)
          : undefined;
        const issued = await ctx
          .get(ApiKeysService)
          .createKey({ role: opts.role, name: opts.name.trim(), clientId: client?.id }, SYSTEM_CLI, { kind: 'shell' });
        const result = {
          id: issued.id,
          key: issued.key,
          prefix: issued.prefix,
          role: issued.role,
          name: issued.name,
          client: issued.clientName,
        };
        if (opts.json) return out(JSON.stringify(result));
        out(
          `Created ${result.role} key "${result.name}"${result.client ? ` for client ${result.client}` : ''} (id ${result.id}).`,
        );
        out('Key (shown once, store it now):');
        out(`  ${result.key}`);
      });
    });

  keys
    .command('list')
    .description('list API keys (never the secrets)')
    .option('--json', 'print one JSON object on the last line')
    .action(async (opts: { json?: boolean }) => {
      await withServices(async (ctx) => {
        const all = [];
        let cursor: string | undefined;
        do {
          const page = await ctx.get(ApiKeysService).listKeys(cursor, 200);
          all.push(...page.items);
          cursor = page.next_cursor ?? undefined;
        } while (cursor);
        const rows = all.map((k) => ({
          id: k.id,
          prefix: k.prefix,
          role: k.role,
          name: k.name,
          client: k.clientName,
          created_at: k.createdAt.toISOString(),
          revoked_at: k.revokedAt?.toISOString() ?? null,
          last_used_at: k.lastUsedAt?.toISOString() ?? null,
        }));
        if (opts.json) return out(JSON.stringify({ items: rows }));
        table(
          rows.map((r) => ({
            id: r.id,
            prefix: r.prefix,
            role: r.role,
            name: r.name,
            client: r.client ?? '-',
            revoked: r.revoked_at ?? '-',
          })),
        );
      });
    });

  keys
    .command('revoke <id>')
    .description('revoke an API key by id')
    .option('--json', 'print one JSON object on the last line')
    .action(async (id: string, opts: { json?: boolean }) => {
      if (!/^[0-9a-f-]{36}$/i.test(id)) throw new CliError('id: must be a key id (UUID) from `keys list`');
      await withServices(async (ctx) => {
        const key = await ctx.get(ApiKeysService).revokeKey(id, SYSTEM_CLI);
        if (opts.json)
          return out(JSON.stringify({ id: key.id, prefix: key.prefix, revoked_at: key.revokedAt?.toISOString() }));
        out(`Revoked ${key.prefix} (${key.name}).`);
      });
    });

  const audit = program.command('audit').description('the audit trail');
  audit
    .command('verify')
    .description(
      'verify the hash chain, signed checkpoints and witness in the database, or (--file) an NDJSON export offline; exit code 1 when broken',
    )
    .option('--file <file>', 'verify this NDJSON export offline (no database needed)')
    .option('--public-key <pem-file>', 'with --file: the idgate public key (PEM) to check signatures against')
    .option('--key-id <id>', 'with --file: require the key inside the export to have this id')
    .option(
      '--witness <dir>',
      'compare with this witness folder (a copy the auditor kept); without --file it replaces AUDIT_WITNESS_DIR',
    )
    .option(
      '--checkpoints <file>',
      'compare with checkpoints the auditor kept (JSON from GET /v1/audit/checkpoints, or NDJSON)',
    )
    .option('--from-seq <n>', 'first seq to check', parseSeq)
    .option('--to-seq <n>', 'last seq to check', parseSeq)
    .option('--strict', 'exit code 1 also on attention: checkpoint cadence gaps, a lagging witness')
    .option('--json', 'print one JSON object on the last line')
    .action(
      async (opts: {
        file?: string;
        publicKey?: string;
        keyId?: string;
        witness?: string;
        checkpoints?: string;
        fromSeq?: number;
        toSeq?: number;
        strict?: boolean;
        json?: boolean;
      }) => {
        const trusted = opts.checkpoints ? await readTrustedCheckpoints(opts.checkpoints) : undefined;
        if (opts.file) {
          const result = await verifyExportFile(opts.file, opts.publicKey, opts.keyId, opts.witness, trusted);
          printExportVerification(result, Boolean(opts.json));
          if (!result.ok) throw new CliError(`export verification failed${at(result.first_bad_seq)}: ${result.reason}`);
          return;
        }
        if (opts.witness && !(await isDirectory(opts.witness)))
          throw new CliError(`--witness: ${opts.witness} is not a folder`);
        await withServices(async (ctx) => {
          const service = ctx.get(AuditService);
          // Chain what is committed first, so the check covers it; a broken chain may refuse to seal, which the check then reports.
          await service.sealNow().catch(() => undefined);
          const report = await ctx
            .get(AuditIntegrity)
            .verifyChain(
              { fromSeq: opts.fromSeq, toSeq: opts.toSeq },
              { witnessDir: opts.witness ? path.resolve(opts.witness) : undefined, trustedCheckpoints: trusted },
            );
          printIntegrityReport(report, Boolean(opts.json));
          if (!report.ok)
            throw new CliError(`audit chain verification failed${at(report.first_bad_seq)}: ${report.reason}`);
          if (opts.strict && report.status !== 'intact') {
            throw new CliError(`audit chain needs attention: ${report.attention.join('; ')}`);
          }
        });
      },
    );

  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--json', 'print one JSON object on the last line')
    .action(async (opts: { json?: boolean }) => {
      const runtime = await prepareRuntime(process.env);
      await runtime.stop();
      if (opts.json) return out(JSON.stringify({ applied: runtime.appliedMigrations }));
      out(
        runtime.appliedMigrations.length
          ? `Applied: ${runtime.appliedMigrations.join(', ')}`
          : 'Database is up to date.',
      );
    });

  program
    .command('migration <name>')
    .description('write the SQL migration for a change to prisma/schema.prisma (npm run db:migration -- <name>)')
    .action(async (name: string) => {
      const runtime = await prepareRuntime(process.env);
      try {
        const dir = await writeMigration(runtime.ownerUrl, name);
        out(
          dir
            ? `Wrote ${dir}/migration.sql — review it, then run: npm run cli -- migrate`
            : 'schema.prisma matches the migrations: nothing to write.',
        );
      } finally {
        await runtime.stop();
      }
    });

  const pii = program.command('pii').description('personal data at rest');
  pii
    .command('purge')
    .description(
      'blank names, ID numbers and OCR fields older than the retention period (hashes, codes and charges stay)',
    )
    .option('--days <n>', 'retention in days (default: PII_RETENTION_DAYS)')
    .option('--json', 'print one JSON object on the last line')
    .action(async (opts: { days?: string; json?: boolean }) => {
      const { pii, module } = await loadPiiMaintenance();
      await withServices(
        async (ctx, runtime) => {
          const days = opts.days !== undefined ? Number(opts.days) : runtime.config.pii.retentionDays;
          if (days === undefined || !Number.isInteger(days) || days < 1) {
            throw new CliError('--days: give a whole number of days ≥ 1, or set PII_RETENTION_DAYS');
          }
          const result = await ctx.get(pii).purgeOlderThan(days, SYSTEM_CLI);
          if (opts.json) return out(JSON.stringify({ purged: result.purged, cutoff: result.cutoff.toISOString() }));
          out(
            `Purged personal data of ${result.purged} verification(s) created before ${result.cutoff.toISOString()}.`,
          );
        },
        [module],
      );
    });
  pii
    .command('rekey')
    .description('re-encrypt personal data sealed with an older key under the newest key in PII_KEYS')
    .option('--json', 'print one JSON object on the last line')
    .action(async (opts: { json?: boolean }) => {
      const { pii, module } = await loadPiiMaintenance();
      await withServices(
        async (ctx) => {
          const result = await ctx.get(pii).rekey(SYSTEM_CLI);
          if (opts.json) return out(JSON.stringify({ rekeyed: result.rekeyed, key_id: result.keyId }));
          out(`Re-encrypted ${result.rekeyed} verification(s) under key ${result.keyId}.`);
        },
        [module],
      );
    });

  return program;
}

/** Loaded by the `pii` commands only: the other commands start without the verification module. */
async function loadPiiMaintenance(): Promise<{ pii: Type<PiiMaintenanceService>; module: Type }> {
  const [{ PiiMaintenanceService: pii }, { VerificationModule: module }] = await Promise.all([
    import('../verification/pii-maintenance.service.js'),
    import('../verification/verification.module.js'),
  ]);
  return { pii, module };
}

class CliError extends Error {}

function parseSeq(value: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(value)) throw new CliError(`"${value}" is not a chain seq (a positive integer)`);
  return Number(value);
}

const at = (seq: number | undefined) => (seq !== undefined ? ` at seq ${seq}` : '');

async function readTrustedCheckpoints(file: string): Promise<Anchor[]> {
  try {
    return parseTrustedCheckpoints(await readFile(file, 'utf8'));
  } catch (err) {
    throw new CliError(`--checkpoints ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function verifyExportFile(
  file: string,
  publicKeyFile?: string,
  keyId?: string,
  witnessDir?: string,
  trusted?: Anchor[],
): Promise<ExportVerification> {
  let pinned: { publicKey: ReturnType<typeof publicKeyFromPem>; keyId: string } | undefined;
  if (publicKeyFile) {
    const publicKey = publicKeyFromPem(await readFile(publicKeyFile, 'utf8'));
    pinned = { publicKey, keyId: publicKeyId(publicKey) };
    if (keyId && keyId !== pinned.keyId)
      throw new CliError(`--key-id ${keyId} is not the id of --public-key (${pinned.keyId})`);
  }
  const specs: ExportAnchorSpec[] = [];
  const feeds: AnchorFeed[] = [];
  if (witnessDir) {
    if (!(await isDirectory(witnessDir))) throw new CliError(`--witness: ${witnessDir} is not a folder`);
    const { latest, feed } = await folderFeed(new WitnessDir(path.resolve(witnessDir)));
    specs.push({ kind: 'folder', location: witnessDir, latest: latest?.record ?? null });
    feeds.push(feed);
  }
  if (trusted) {
    specs.push({ kind: 'checkpoints', location: `${trusted.length} trusted checkpoint(s)` });
    feeds.push(listFeed(trusted));
  }
  const verifier = new ExportVerifier(pinned, specs);
  // Anchors at or below an event's seq go in before its line, so each entry meets the anchors at its seq.
  const feedThrough = async (seq: number) => {
    for (const [i, feed] of feeds.entries()) {
      await feed.through(
        seq,
        (a) => verifier.pushAnchor(i, a),
        (bad) => {
          if (bad.fatal) verifier.anchorUnreadable(`the witness holds an unreadable record: ${bad.malformed}`, bad.seq);
        },
      );
    }
  };
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    const record = verifier.parse(line);
    if (record) {
      if (record.type === 'event' && typeof record.seq === 'number') await feedThrough(record.seq);
      verifier.acceptParsed(record);
    }
    if (verifier.failed) break;
  }
  lines.close();
  verifier.endEntries();
  await feedThrough(Number.POSITIVE_INFINITY);
  const result = verifier.finish();
  if (!pinned && keyId && result.key_id !== keyId) {
    return { ...result, ok: false, reason: `the export is signed by key ${result.key_id}, not ${keyId}` };
  }
  return keyId && !pinned ? { ...result, key_pinned: true } : result;
}

function printIntegrityReport(report: IntegrityReport, json: boolean): void {
  if (json) return out(JSON.stringify(report));
  if (report.ok) {
    out(
      `Audit chain OK: ${report.checked} entries (seq ${report.from_seq}–${report.to_seq}), ${report.checkpoints_verified} signed checkpoints verified.`,
    );
  } else {
    out(`Audit chain BROKEN at seq ${report.first_bad_seq}: ${report.reason}`);
    for (const f of report.faults.slice(1, 10)) out(`  also at seq ${f.seq}: ${f.reason}`);
    if (report.fault_count > 10) out(`  … ${report.fault_count} faults in all`);
  }
  for (const w of report.witness) {
    out(
      `Witness (${w.kind}) ${w.location}: ${w.state}, ${w.records} records (${w.checkpoints} checkpoints, ${w.heads} heads), ` +
        `${w.matched} matched the chain${w.latest_seq !== null ? `, latest at seq ${w.latest_seq}` : ''}${w.error ? ` (${w.error})` : ''}.`,
    );
  }
  if (report.signing.refusal) {
    const r = report.signing.refusal;
    out(`Signing REFUSED since ${r.since} (${r.kind} at seq ${r.seq}): ${r.reason}`);
  }
  for (const a of report.attention) out(`Attention: ${a}`);
}

function printExportVerification(r: ExportVerification, json: boolean): void {
  if (json) return out(JSON.stringify(r));
  if (!r.ok) return out(`Export BROKEN${at(r.first_bad_seq)} (line ${r.line}): ${r.reason}`);
  out(
    `Export OK: ${r.checked} sealed events verified, ${r.checkpoints_verified} checkpoints verified` +
      (r.anchored_through_seq !== null ? ` (signed through seq ${r.anchored_through_seq})` : '') +
      `, ${r.unanchored_events} events after the last checkpoint, ${r.unsealed} not sealed yet.`,
  );
  if (!r.contiguous)
    out('Note: the export skips seqs (filtered); linkage was checked between consecutive entries only.');
  for (const a of r.anchors ?? []) {
    out(
      `Compared with the ${a.kind === 'folder' ? 'witness folder' : 'trusted checkpoints'} ${a.location}: ` +
        `${a.records} read, ${a.matched} matched the export, ${a.skipped} at seqs the export does not hold.`,
    );
  }
  if (!r.key_pinned) {
    out(
      `Warning: signatures were checked against the key inside the file (${r.key_id}); pass --public-key or --key-id to pin it.`,
    );
  }
}

async function run(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ConfigError) process.stderr.write(`idgate: configuration error: ${err.message}\n`);
    else if (err instanceof ProblemException) process.stderr.write(`idgate: ${err.body.detail ?? err.body.title}\n`);
    else if (err instanceof CliError) process.stderr.write(`idgate: ${err.message}\n`);
    else process.stderr.write(`idgate: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void run(process.argv).then((code) => process.exit(code));
}
