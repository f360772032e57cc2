import { mkdirSync, readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MigrationList, SchemaFilter } from '@prisma/schema-engine-wasm';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { openSchemaEngine, poolConfigFromUrl } from './schema-engine';
import { migrationsDir, prismaDir, schemaFile } from './project-paths';

const NO_FILTER: SchemaFilter = { externalTables: [], externalEnums: [] };

function schemaFiles(): [string, string][] {
  return [[schemaFile(), readFileSync(schemaFile(), 'utf8')]];
}

/** The migrations folder in the shape the schema engine takes (Prisma's own folder format). */
export function readMigrationList(dir = migrationsDir()): MigrationList {
  const lockPath = path.join(dir, 'migration_lock.toml');
  const directories = existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
  return {
    baseDir: dir,
    // The engine requires the lock file's content even for an empty folder.
    lockfile: {
      path: 'migration_lock.toml',
      content: existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : 'provider = "postgresql"\n',
    },
    shadowDbInitScript: '',
    migrationDirectories: directories.map((name) => {
      const file = path.join(dir, name, 'migration.sql');
      return {
        path: name,
        migrationFile: {
          path: 'migration.sql',
          content: existsSync(file)
            ? { tag: 'ok' as const, value: readFileSync(file, 'utf8') }
            : { tag: 'error' as const, value: `missing ${file}` },
        },
      };
    }),
  };
}

/** `prisma migrate deploy`: applies pending migrations, returns the names applied. */
export async function applyMigrations(databaseUrl: string): Promise<string[]> {
  // Most starts have nothing to apply: say so from the migrations table, without loading the engine.
  if (await allApplied(databaseUrl)) return [];
  const session = await openSchemaEngine(databaseUrl, schemaFiles());
  try {
    const out = await session.engine.applyMigrations({
      migrationsList: readMigrationList(),
      filters: NO_FILTER,
    });
    return out.appliedMigrationNames;
  } finally {
    await session.close();
  }
}

/**
 * True when every migration folder is recorded as applied (finished, not rolled back) with the
 * checksum Prisma records (SHA-256 of migration.sql), and nothing failed half-way: then
 * `migrate deploy` would do nothing. Anything else (no table yet, a new or edited migration)
 * goes to the engine, which applies or refuses as Prisma does.
 */
async function allApplied(databaseUrl: string): Promise<boolean> {
  const local = readMigrationList().migrationDirectories.map((d) => ({
    name: d.path,
    sql: d.migrationFile.content.tag === 'ok' ? d.migrationFile.content.value : null,
  }));
  if (local.some((m) => m.sql === null)) return false;
  const client = new pg.Client(poolConfigFromUrl(databaseUrl, { application_name: 'idgate-migrations' }));
  try {
    await client.connect();
    const { rows } = await client.query<{ migration_name: string; checksum: string; ok: boolean }>(
      `SELECT migration_name, checksum, (finished_at IS NOT NULL AND rolled_back_at IS NULL) AS ok
       FROM _prisma_migrations`,
    );
    if (rows.some((r) => !r.ok && !rows.some((o) => o.ok && o.migration_name === r.migration_name))) return false;
    const applied = new Map(rows.filter((r) => r.ok).map((r) => [r.migration_name, r.checksum]));
    return local.every((m) => applied.get(m.name) === createHash('sha256').update(m.sql!).digest('hex'));
  } catch {
    return false; // no migrations table yet (a fresh database), or not readable: the engine decides
  } finally {
    await client.end().catch(() => undefined);
  }
}

type DiffSource = 'migrations' | 'live database';

/** SQL that takes `from` to what schema.prisma describes, or null when they agree. */
async function diffToSchema(databaseUrl: string, from: DiffSource): Promise<string | null> {
  const session = await openSchemaEngine(databaseUrl, schemaFiles());
  try {
    const [file, content] = schemaFiles()[0];
    const result = await session.engine.diff({
      from:
        from === 'migrations'
          ? { tag: 'migrations', ...readMigrationList() }
          : { tag: 'schemaDatasource', files: [{ path: file, content }], configDir: prismaDir() },
      to: { tag: 'schemaDatamodel', files: [{ path: file, content }] },
      script: true,
      exitCode: true,
      filters: NO_FILTER,
    });
    return result.exitCode === 2 ? (result.stdout ?? '') : null;
  } finally {
    await session.close();
  }
}

/**
 * SQL that takes a database built by the migrations to what schema.prisma describes,
 * or null when they agree. Replays the migrations in a throwaway shadow database.
 */
export function pendingSchemaChange(databaseUrl: string): Promise<string | null> {
  return diffToSchema(databaseUrl, 'migrations');
}

/** Drift check: SQL that takes the live database to schema.prisma, or null when there is no drift. */
export function liveSchemaDrift(databaseUrl: string): Promise<string | null> {
  return diffToSchema(databaseUrl, 'live database');
}

function utcStamp(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** Writes prisma/migrations/<UTC stamp>_<name>/migration.sql for a schema change; null when none. */
export async function writeMigration(databaseUrl: string, name: string, now = new Date()): Promise<string | null> {
  if (!/^[a-z0-9_]{1,60}$/.test(name)) {
    throw new Error('migration name: use 1-60 lowercase letters, digits and underscores');
  }
  const sql = await pendingSchemaChange(databaseUrl);
  if (sql === null) return null;
  const dir = path.join(migrationsDir(), `${utcStamp(now)}_${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'migration.sql'), sql);
  const lock = path.join(migrationsDir(), 'migration_lock.toml');
  if (!existsSync(lock)) {
    writeFileSync(lock, '# Please do not edit this file manually\nprovider = "postgresql"\n');
  }
  return dir;
}
