import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, ColumnTypeEnum } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import type { SchemaEngine } from '@prisma/schema-engine-wasm';

/*
 * Prisma's schema engine compiled to WebAssembly, driven through the pg adapter.
 * Prisma's CLI would download a native engine this environment cannot reach;
 * the wasm build applies the same migration folders to the same
 * `_prisma_migrations` table. The workarounds below are for known pitfalls of
 * @prisma/adapter-pg 7.10 when the schema engine drives it (see README).
 */

// Node has WebAssembly at run time; its type declarations come only with lib "dom", so declare what we use.
type WasmExports = Record<string, unknown>;
declare const WebAssembly: {
  instantiate(
    bytes: Buffer,
    imports: Record<string, Record<string, unknown>>,
  ): Promise<{ instance: { exports: WasmExports } }>;
};

type WasmBindings = Record<string, unknown> & {
  __wbg_set_wasm(exports: WasmExports): void;
  SchemaEngine: typeof SchemaEngine;
};

let bindingsPromise: Promise<WasmBindings> | undefined;

function loadBindings(): Promise<WasmBindings> {
  bindingsPromise ??= (async () => {
    // A wasm-bindgen "bundler" build: we instantiate the .wasm ourselves.
    const bg = require('@prisma/schema-engine-wasm/schema_engine_bg') as WasmBindings;
    const wasmPath = path.join(
      path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg')),
      'schema_engine_bg.wasm',
    );
    const imports: Record<string, unknown> = { ...bg };
    for (const [name, fn] of Object.entries(bg)) {
      // The engine arms timers it never clears; unref them so a CLI run exits promptly.
      if (name.startsWith('__wbg_setTimeout_') && typeof fn === 'function') {
        imports[name] = (...args: unknown[]) => {
          const timer = (fn as (...a: unknown[]) => unknown)(...args);
          (timer as NodeJS.Timeout | undefined)?.unref?.();
          return timer;
        };
      }
    }
    const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {
      './schema_engine_bg.js': imports,
    });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return bg;
  })();
  return bindingsPromise;
}

type PgAdapter = Awaited<ReturnType<PrismaPg['connect']>>;

type PgResult = { fields: Array<{ dataTypeID: number }>; rows: unknown[][] };
type QueryRaw = PgAdapter['queryRaw'];

/** PostgreSQL's internal single-byte "char" type (pg_constraint.contype and friends). */
const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

/**
 * Two fixes to the adapter for the schema engine's use:
 * - Catalog queries return "char" columns, which the adapter cannot type and the
 *   engine wants as Character: decode them as text, then report them as Character.
 * - Migration scripts are split on every ";", which breaks function bodies
 *   ($$ … ; … $$): send a script whole, as one simple-protocol query, as Prisma's
 *   native engine does.
 */
function patchForSchemaEngine(adapter: PgAdapter): PgAdapter {
  const internals = adapter as unknown as { performIO(q: unknown): Promise<PgResult> };
  const performIO = internals.performIO.bind(adapter);
  const queryRaw: QueryRaw = adapter.queryRaw; // unbound: called below with `this` = view
  adapter.queryRaw = async (query) => {
    let charColumns: number[] = [];
    // Run the adapter's own queryRaw with a performIO that retypes "char" as text.
    const view = Object.create(adapter) as typeof internals;
    view.performIO = async (q) => {
      const result = await performIO(q);
      charColumns = result.fields.flatMap((f, i) => (f.dataTypeID === PG_CHAR_OID ? [i] : []));
      for (const i of charColumns) result.fields[i].dataTypeID = PG_TEXT_OID;
      return result;
    };
    const result = await (queryRaw as unknown as { call(self: unknown, q: unknown): ReturnType<QueryRaw> }).call(
      view,
      query,
    );
    for (const i of charColumns) result.columnTypes[i] = ColumnTypeEnum.Character;
    return result;
  };
  const pool = adapter.underlyingDriver();
  adapter.executeScript = async (script: string) => {
    try {
      await pool.query(script);
    } catch (error) {
      (adapter as unknown as { onError(e: unknown): never }).onError(error);
    }
  };
  return adapter;
}

export function poolConfigFromUrl(url: string, overrides: pg.PoolConfig = {}): pg.PoolConfig {
  // Never pass `connectionString` on: it would override `database` for the shadow database.
  const parsed = parseIntoClientConfig(url) as pg.PoolConfig;
  // Like libpq (psql), default to the OS user when the URL names none; pg would rely on $USER.
  if (!parsed.user) parsed.user = process.env.PGUSER || os.userInfo().username;
  if (parsed.password === '') delete parsed.password;
  return { ...parsed, ...overrides };
}

/** Adapter factory that owns its pools and gives the engine a real, disposable shadow database. */
class MigrationAdapterFactory extends PrismaPg {
  private readonly pools: pg.Pool[] = [];

  constructor(private readonly poolConfig: pg.PoolConfig) {
    const pool = new pg.Pool({ ...poolConfig, max: 2 });
    // Idle connections can be cut by the server (the shadow database is dropped WITH FORCE);
    // without a listener pg would raise that as an unhandled error.
    pool.on('error', () => undefined);
    super(pool);
    this.pools.push(pool);
  }

  override async connect() {
    return patchForSchemaEngine(await super.connect());
  }

  override async connectToShadowDb() {
    const admin = new pg.Client(this.poolConfig);
    await admin.connect();
    const database = `idgate_shadow_${randomUUID().replaceAll('-', '')}`;
    await admin.query(`CREATE DATABASE "${database}"`);
    const pool = new pg.Pool({ ...this.poolConfig, database, max: 2 });
    pool.on('error', () => undefined);
    const adapter = patchForSchemaEngine(await new PrismaPg(pool).connect());
    const dispose = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await dispose();
      await pool.end();
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.end();
    };
    return adapter;
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.end()));
  }
}

export interface EngineSession {
  engine: SchemaEngine;
  close(): Promise<void>;
}

/** Opens a schema engine connected to `url`; `close()` frees the engine and its pools. */
export async function openSchemaEngine(url: string, datamodels: [string, string][]): Promise<EngineSession> {
  const bg = await loadBindings();
  const factory = new MigrationAdapterFactory(poolConfigFromUrl(url));
  const logs: string[] = [];
  const engine = await bg.SchemaEngine.new(
    { datamodels },
    (line: string) => logs.push(line),
    bindMigrationAwareSqlAdapterFactory(factory),
  );
  return {
    engine,
    async close() {
      engine.free();
      await factory.close();
    },
  };
}
