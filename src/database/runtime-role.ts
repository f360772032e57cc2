import { createHash, createHmac, hkdfSync, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';
import { ConfigError } from '../config/environment';
import { applyMigrations } from './migrations';
import { poolConfigFromUrl } from './schema-engine';

/*
 * Least privilege in the database. Two roles:
 *
 * - the owner, which owns every table, applies the migrations and grants;
 * - the runtime role the app and the CLI commands run as. It owns nothing, so it can
 *   neither disable the audit tables' triggers (ALTER TABLE needs ownership) nor drop
 *   or alter a table; it is no superuser, so it cannot SET session_replication_role
 *   (which would also skip the triggers) or read around the grants; and it may do to
 *   each table only what idgate's code does to it (RUNTIME_PRIVILEGES): on the audit
 *   tables that is SELECT and INSERT, so UPDATE, DELETE and TRUNCATE are refused with
 *   "permission denied" before any trigger is even reached.
 *
 * The grants are re-applied after the migrations on every start, table by table from
 * RUNTIME_PRIVILEGES, rather than left to ALTER DEFAULT PRIVILEGES: default privileges
 * reach only objects created afterwards, and only by the role that set them (not the
 * tables that exist already, nor those of a migration run by another owner); they give
 * every new table the same rights, whereas an audit table and a work table need different
 * ones; and nothing would put back a grant someone added or took away by hand. Applying
 * the policy on each start is exact, heals drift, and changes nothing when nothing drifted.
 */

export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

/**
 * What the runtime role may do to each relation of the schema, from what the code does
 * to it (Prisma calls and raw SQL under src/). No TRUNCATE, REFERENCES or TRIGGER
 * anywhere; UPDATE and DELETE only where a code path needs them. A table missing here
 * gets no privilege at all (runtime-role.spec.ts keeps this list and schema.prisma in step).
 */
export const RUNTIME_PRIVILEGES: Readonly<Record<string, readonly TablePrivilege[]>> = {
  // Created (findOrCreateClient) and read; never renamed or removed.
  clients: ['SELECT', 'INSERT'],
  // Created, read; revoked_at and last_used_at are updated. Keys are never deleted.
  api_keys: ['SELECT', 'INSERT', 'UPDATE'],
  // Approval requests are approved and consumed (updateMany), never deleted.
  approval_requests: ['SELECT', 'INSERT', 'UPDATE'],
  // One-time flags (the bootstrap admin key): created and read.
  system_flags: ['SELECT', 'INSERT'],
  // Append-only (their own triggers too): written and read, nothing else.
  audit_events: ['SELECT', 'INSERT'],
  audit_chain: ['SELECT', 'INSERT'],
  audit_checkpoints: ['SELECT', 'INSERT'],
  // Settled, swept and purged of personal data by UPDATE; a verification is never deleted.
  verifications: ['SELECT', 'INSERT', 'UPDATE'],
  // Claimed with INSERT … ON CONFLICT DO UPDATE, updated, and expired ones deleted by the sweeper and purge.
  idempotency_keys: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  // Upserted.
  client_policies: ['SELECT', 'INSERT', 'UPDATE'],
  // Append-only price history (trigger too).
  prices: ['SELECT', 'INSERT'],
  // Created, completed (update), and deleted while still 'loading' when an upload fails.
  reconciliations: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  // Loaded by COPY (INSERT), read by the matcher, deleted when an upload fails.
  reconciliation_lines: ['SELECT', 'INSERT', 'DELETE'],
  // Inserted by the matcher, then settled (UPDATE).
  reconciliation_items: ['SELECT', 'INSERT', 'UPDATE'],
  // The verification module's read interface for billing (a view).
  verification_charges: ['SELECT'],
};

/**
 * Tables the reconciliation ANALYZEs after loading them, so the planner hash-joins a large
 * statement. On PostgreSQL ≥ 17 the MAINTAIN privilege lets a non-owner do that; older
 * servers skip the ANALYZE with a warning (autovacuum analyzes them later).
 */
export const ANALYZED_BY_RUNTIME: readonly string[] = ['reconciliation_lines', 'reconciliation_items'];

/** The tables no role but the owner may ever change (the audit trail). */
export const APPEND_ONLY_TABLES: readonly string[] = ['audit_events', 'audit_chain', 'audit_checkpoints'];

/** Prisma's migration log: the owner's alone (migrations run as the owner). */
const MIGRATIONS_TABLE = '_prisma_migrations';
const SCHEMA = 'public';
/** The comment idgate puts on a role it made, so that it never takes over someone else's. */
const ROLE_MARK = 'idgate runtime role';
/** Serialises role and grant changes of instances starting together (GRANT on one table from two sessions can fail). */
const GRANT_LOCK = 'idgate.runtime-role';
const PASSWORD_LABEL = 'idgate database runtime role password v1';
/** PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes. */
const MAX_IDENTIFIER_BYTES = 63;

/** `<database>_runtime`, shortened with a hash of the full name when it would pass 63 bytes. */
export function runtimeRoleName(database: string): string {
  const suffix = '_runtime';
  const plain = `${database}${suffix}`;
  if (Buffer.byteLength(plain) <= MAX_IDENTIFIER_BYTES) return plain;
  const tag = `_${createHash('sha256').update(database).digest('hex').slice(0, 8)}`;
  let head = '';
  for (const ch of database) {
    if (Buffer.byteLength(head + ch + tag + suffix) > MAX_IDENTIFIER_BYTES) break;
    head += ch;
  }
  return `${head}${tag}${suffix}`;
}

/**
 * The runtime role's password, derived (HKDF-SHA256, a label of its own) from a secret every
 * instance already shares: each derives the same one, so an instance that (re)starts and sets
 * it never locks the others out. The role's name is in the label: one password per database.
 */
export function deriveRuntimePassword(secret: Buffer | string, role: string): string {
  const key = hkdfSync('sha256', secret, Buffer.alloc(0), `${PASSWORD_LABEL}\n${role}`, 32);
  return Buffer.from(key).toString('base64url');
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677): sent instead
 * of the password, so that the password appears in no statement a server may log.
 * (The passwords idgate makes are ASCII, which SASLprep leaves unchanged.)
 */
export function scramSha256Verifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** `url` with another user and password (in the query when the URL has no host, as for a Unix socket). */
export function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.searchParams.delete('user');
  u.searchParams.delete('password');
  if (u.host) {
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password);
  } else {
    u.searchParams.set('user', user);
    u.searchParams.set('password', password);
  }
  return u.toString();
}

/** The runtime role given as a URL (DATABASE_URL beside DATABASE_OWNER_URL). */
export interface GivenRuntimeRole {
  url: string;
}

/** The runtime role idgate makes from the owner: named after the database unless `role` says otherwise. */
export interface MadeRuntimeRole {
  role?: string;
  password: (role: string) => string;
}

export interface DatabaseRoles {
  /** The owner: migrations, the runtime role and its grants. */
  ownerUrl: string;
  runtime: GivenRuntimeRole | MadeRuntimeRole;
  /**
   * The settings a refusal names (the runtime role's and the owner's): a refusal is then a
   * ConfigError, one line. Absent (embedded mode, tests), a refusal is a plain error.
   */
  settings?: { runtime: string; owner: string };
}

export interface PreparedDatabase {
  /** What the app connects with: the runtime role. */
  runtimeUrl: string;
  runtimeRole: string;
  appliedMigrations: string[];
}

/**
 * Everything the database needs before the app starts: checks a given runtime role, applies
 * the migrations as the owner, makes or updates the runtime role, re-applies its grants,
 * and checks, connected as that role, that it has exactly what it should and nothing that
 * could change the audit trail. Throws (refuses) otherwise.
 */
export async function prepareDatabase(roles: DatabaseRoles): Promise<PreparedDatabase> {
  const runtime = roles.runtime;
  const given = 'url' in runtime ? runtime.url : null;
  const judge = judgeFor(roles.settings, given !== null);
  let givenRole: string | null = null;
  if (given !== null) {
    // Before migrating: a runtime URL that names the owner or a superuser is a mistake to stop at once.
    const owner = await withClient(roles.ownerUrl, currentRole);
    givenRole = await withClient(given, (c) => checkIdentity(c, judge, owner));
  } else {
    await withClient(roles.ownerUrl, (c) => refuseRuntimeRoleAsOwner(c, judge));
  }
  const appliedMigrations = await applyMigrations(roles.ownerUrl);
  const { runtimeUrl, runtimeRole } = await withClient(roles.ownerUrl, async (owner) => {
    await owner.query('BEGIN');
    try {
      await owner.query('SELECT pg_advisory_xact_lock(hashtext($1))', [GRANT_LOCK]);
      const made =
        'url' in runtime
          ? { runtimeUrl: runtime.url, runtimeRole: givenRole ?? (await withClient(runtime.url, currentRole)) }
          : await makeRole(owner, roles.ownerUrl, runtime, judge);
      await applyGrants(owner, made.runtimeRole);
      await owner.query('COMMIT');
      return made;
    } catch (err) {
      await owner.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
  await withClient(runtimeUrl, async (c) => {
    await checkIdentity(c, judge, null);
    await checkPrivileges(c, judge);
  });
  return { runtimeUrl, runtimeRole, appliedMigrations };
}

/** How refusals read: one sentence after the setting it blames, or a plain error without settings. */
interface Judge {
  refuse(who: 'runtime' | 'owner', problem: string): never;
  /** The runtime role, as a refusal names it after the runtime setting's name. */
  subject(role: string): string;
}

function judgeFor(settings: DatabaseRoles['settings'], given: boolean): Judge {
  if (!settings) {
    return {
      refuse: (_who, problem) => {
        throw new Error(`database ${problem}`);
      },
      subject: (role) => `runtime role "${role}"`,
    };
  }
  return {
    refuse: (who, problem) => {
      throw new ConfigError(settings[who], problem);
    },
    subject: (role) => (given ? `names role "${role}"` : `is the owner; the runtime role made from it is "${role}"`),
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...poolConfigFromUrl(url), application_name: 'idgate-setup' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function currentRole(c: pg.Client): Promise<string> {
  return (await c.query<{ role: string }>('SELECT current_user AS role')).rows[0].role;
}

/** Owner-only setup: the URL must be the owner's, not a runtime role idgate made earlier. */
async function refuseRuntimeRoleAsOwner(c: pg.Client, judge: Judge): Promise<void> {
  const { rows } = await c.query<{ role: string; note: string | null }>(
    `SELECT current_user AS role, shobj_description(oid, 'pg_authid') AS note FROM pg_roles WHERE rolname = current_user`,
  );
  if (rows[0]?.note?.startsWith(ROLE_MARK)) {
    judge.refuse(
      'owner',
      `names idgate's runtime role "${rows[0].role}", which can neither migrate nor grant: ` +
        'set DATABASE_OWNER_URL to the owner role and keep this URL as DATABASE_URL',
    );
  }
}

/** The runtime role named after the database (or as asked), made or brought back in line by the owner. */
async function makeRole(
  owner: pg.Client,
  ownerUrl: string,
  spec: MadeRuntimeRole,
  judge: Judge,
): Promise<{ runtimeUrl: string; runtimeRole: string }> {
  const database = (await owner.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
  const role = spec.role ?? runtimeRoleName(database);
  const password = spec.password(role);
  await ensureRole(owner, role, password, judge);
  return { runtimeUrl: withCredentials(ownerUrl, role, password), runtimeRole: role };
}

interface RoleRow {
  rolsuper: boolean;
  rolinherit: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolcanlogin: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  note: string | null;
}

const INSUFFICIENT_PRIVILEGE = '42501';

/** Creates the runtime role, or brings one idgate made earlier back to its attributes and password. */
async function ensureRole(owner: pg.Client, role: string, password: string, judge: Judge): Promise<void> {
  const ident = owner.escapeIdentifier(role);
  const secret = owner.escapeLiteral(scramSha256Verifier(password));
  const { rows } = await owner.query<RoleRow>(
    `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
            shobj_description(oid, 'pg_authid') AS note
     FROM pg_roles WHERE rolname = $1`,
    [role],
  );
  const existing = rows[0];
  const ownerRole = await currentRole(owner);
  const denied = (err: unknown): never => {
    if ((err as { code?: string }).code === INSUFFICIENT_PRIVILEGE) {
      judge.refuse(
        'owner',
        `names role "${ownerRole}", which may not ${existing ? 'alter' : 'create'} the runtime role "${role}" ` +
          `(${(err as Error).message}): give it CREATEROLE, or create a login role that owns nothing ` +
          'and set DATABASE_URL to it and DATABASE_OWNER_URL to the owner',
      );
    }
    throw err;
  };
  if (!existing) {
    // The defaults are NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS. NOINHERIT:
    // should it ever be made a member of another role, it still does not act with its rights.
    await owner.query(`CREATE ROLE ${ident} WITH LOGIN NOINHERIT PASSWORD ${secret}`).catch(denied);
    await owner.query(`COMMENT ON ROLE ${ident} IS ${owner.escapeLiteral(ROLE_MARK)}`).catch(denied);
    return;
  }
  if (!existing.note?.startsWith(ROLE_MARK)) {
    judge.refuse(
      'owner',
      `would have idgate run as the role "${role}", which exists and was not made by idgate: ` +
        'drop or rename it, or set DATABASE_URL to a runtime role of your own and DATABASE_OWNER_URL to the owner',
    );
  }
  // Only the attributes that are wrong: a non-superuser owner may not even name SUPERUSER,
  // REPLICATION or BYPASSRLS in ALTER ROLE, not even to turn them off.
  const fixes = [
    existing.rolsuper && 'NOSUPERUSER',
    existing.rolcreatedb && 'NOCREATEDB',
    existing.rolcreaterole && 'NOCREATEROLE',
    existing.rolreplication && 'NOREPLICATION',
    existing.rolbypassrls && 'NOBYPASSRLS',
    existing.rolinherit && 'NOINHERIT',
    !existing.rolcanlogin && 'LOGIN',
  ].filter((f): f is string => typeof f === 'string');
  // The password is set on every start: every instance derives the same one, so this heals a
  // role whose password was changed by hand and locks no running instance out.
  await owner.query(`ALTER ROLE ${ident} WITH ${fixes.join(' ')} PASSWORD ${secret}`).catch(denied);
}

interface RelationRow {
  relname: string;
  relkind: string;
  administrable: boolean;
  granted: string[];
  public_granted: boolean;
}

/**
 * Brings the runtime role's privileges to RUNTIME_PRIVILEGES relation by relation, touching
 * only the relations whose grants differ (a steady-state start writes no catalog row).
 * What PUBLIC holds on them is revoked too: the runtime role would hold it as well.
 */
async function applyGrants(owner: pg.Client, role: string): Promise<void> {
  const ident = owner.escapeIdentifier(role);
  const schema = owner.escapeIdentifier(SCHEMA);
  const version = await serverVersion(owner);
  const { rows } = await owner.query<RelationRow>(
    `SELECT c.relname, c.relkind::text AS relkind,
            pg_has_role(current_user, c.relowner, 'USAGE') AS administrable,
            ARRAY(SELECT DISTINCT a.privilege_type FROM aclexplode(c.relacl) a
                  WHERE a.grantee = to_regrole($1)::oid ORDER BY 1)::text[] AS granted,
            EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0) AS public_granted
     FROM pg_class c
     WHERE c.relnamespace = to_regnamespace($2)::oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')`,
    [role, SCHEMA],
  );
  const statements: string[] = [];
  for (const r of rows) {
    // Not the owner's to grant: checkPrivileges judges the relations that matter.
    if (!r.administrable) continue;
    const wanted = wantedPrivileges(r.relname, r.relkind, version);
    if (!r.public_granted && sameSet(r.granted, wanted)) continue;
    const object = `${r.relkind === 'S' ? 'SEQUENCE' : 'TABLE'} ${schema}.${owner.escapeIdentifier(r.relname)}`;
    statements.push(`REVOKE ALL ON ${object} FROM PUBLIC, ${ident}`);
    if (wanted.length > 0) statements.push(`GRANT ${wanted.join(', ')} ON ${object} TO ${ident}`);
  }
  const access = (
    await owner.query<{ usage: boolean; create: boolean; connect: boolean; db: string }>(
      `SELECT has_schema_privilege($1, $2, 'USAGE') AS usage, has_schema_privilege($1, $2, 'CREATE') AS create,
              has_database_privilege($1, current_database(), 'CONNECT') AS connect, current_database() AS db`,
      [role, SCHEMA],
    )
  ).rows[0];
  if (!access.usage) statements.push(`GRANT USAGE ON SCHEMA ${schema} TO ${ident}`);
  // PostgreSQL < 15 lets PUBLIC create tables in "public": the runtime role must never own one.
  if (access.create) statements.push(`REVOKE CREATE ON SCHEMA ${schema} FROM PUBLIC, ${ident}`);
  if (!access.connect) statements.push(`GRANT CONNECT ON DATABASE ${owner.escapeIdentifier(access.db)} TO ${ident}`);
  if (statements.length > 0) await owner.query(statements.join(';\n'));
}

function wantedPrivileges(relation: string, relkind: string, version: number): string[] {
  // Sequences (none today: ids are UUIDs): nextval and currval, never setval.
  if (relkind === 'S') return ['SELECT', 'USAGE'];
  const wanted: string[] = [...(RUNTIME_PRIVILEGES[relation] ?? [])];
  if (version >= 170000 && ANALYZED_BY_RUNTIME.includes(relation)) wanted.push('MAINTAIN');
  return wanted.sort();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

async function serverVersion(c: pg.Client): Promise<number> {
  return Number((await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0].v);
}

interface IdentityRow {
  role: string;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  owns_database: boolean;
  creates_schemas: boolean;
  owned: string[];
  privileged_roles: string[];
}

/**
 * Connected as the runtime role: it is not `owner`, has no dangerous attribute, belongs to
 * no role that has one, and owns nothing in this database (nor belongs to a role that does:
 * a member may SET ROLE to it). Returns its name.
 */
async function checkIdentity(c: pg.Client, judge: Judge, owner: string | null): Promise<string> {
  const { rows } = await c.query<IdentityRow>(
    `SELECT r.rolname AS role, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
            (SELECT pg_has_role(current_user, d.datdba, 'MEMBER') FROM pg_database d
             WHERE d.datname = current_database()) AS owns_database,
            has_database_privilege(current_database(), 'CREATE') AS creates_schemas,
            ARRAY(SELECT o FROM (
                    SELECT 'table ' || c.oid::regclass::text AS o FROM pg_class c
                    JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                      AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                      AND pg_has_role(current_user, c.relowner, 'MEMBER')
                    UNION ALL
                    SELECT 'schema ' || n.nspname FROM pg_namespace n
                    WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                      AND pg_has_role(current_user, n.nspowner, 'MEMBER')
                    UNION ALL
                    SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
                    JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
                      AND pg_has_role(current_user, p.proowner, 'MEMBER')
                  ) owned ORDER BY 1 LIMIT 5)::text[] AS owned,
            ARRAY(SELECT g.rolname FROM pg_roles g
                  WHERE g.oid <> r.oid AND pg_has_role(current_user, g.oid, 'MEMBER')
                    AND (g.rolsuper OR g.rolcreaterole OR g.rolcreatedb OR g.rolreplication OR g.rolbypassrls
                         OR g.rolname IN ('pg_write_all_data', 'pg_maintain'))
                  ORDER BY 1)::text[] AS privileged_roles
     FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const me = rows[0];
  const refuse = (problem: string): never => judge.refuse('runtime', `${judge.subject(me.role)}: ${problem}`);
  const fix = 'give idgate a login role of its own that owns nothing (README, Configuration)';
  if (owner !== null && me.role === owner) {
    refuse(`it is also DATABASE_OWNER_URL's role, and the runtime role must not be the owner; ${fix}`);
  }
  if (me.rolsuper) refuse(`it is a superuser, which the runtime role must not be; ${fix}`);
  const attributes = [
    me.rolcreaterole && 'CREATEROLE',
    me.rolcreatedb && 'CREATEDB',
    me.rolreplication && 'REPLICATION',
    me.rolbypassrls && 'BYPASSRLS',
  ].filter((a): a is string => typeof a === 'string');
  if (attributes.length > 0) refuse(`it has ${attributes.join(', ')}, which the runtime role must not; ${fix}`);
  if (me.privileged_roles.length > 0) {
    const which = me.privileged_roles.map((g) => `"${g}"`).join(', ');
    refuse(`it is a member of ${which}, a role with powers the runtime role must not have; revoke that`);
  }
  if (me.owns_database) refuse(`it owns the database, and the runtime role must own nothing; ${fix}`);
  if (me.owned.length > 0) {
    refuse(
      `it owns (or is a member of the owner of) ${me.owned.join(', ')}; the runtime role must own nothing; ${fix}`,
    );
  }
  if (me.creates_schemas) refuse('it may create schemas in the database; revoke CREATE ON DATABASE from it');
  return me.role;
}

interface PrivilegeRow {
  relation: string;
  present: boolean;
  held: string[];
  creates_tables: boolean;
}

/**
 * Connected as the runtime role: on every relation of RUNTIME_PRIVILEGES (and Prisma's
 * migration log) it holds exactly what the policy gives, whoever granted it (directly, to
 * PUBLIC or to a role it belongs to); it cannot create tables; and it may not set
 * session_replication_role (which would skip the triggers).
 */
async function checkPrivileges(c: pg.Client, judge: Judge): Promise<void> {
  const version = await serverVersion(c);
  const role = await currentRole(c);
  const refuse = (problem: string): never => judge.refuse('runtime', `${judge.subject(role)}: ${problem}`);
  const kinds = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
  // MAINTAIN (PostgreSQL ≥ 17) lets a role VACUUM, ANALYZE, CLUSTER, REINDEX and LOCK a table.
  if (version >= 170000) kinds.push('MAINTAIN');
  const relations = [...Object.keys(RUNTIME_PRIVILEGES), MIGRATIONS_TABLE];
  const { rows } = await c.query<PrivilegeRow>(
    `SELECT t.relation, r.oid IS NOT NULL AS present,
            ARRAY(SELECT k FROM unnest($2::text[]) k
                  WHERE r.oid IS NOT NULL AND has_table_privilege(r.oid, k))::text[] AS held,
            has_schema_privilege($3, 'CREATE') AS creates_tables
     FROM unnest($1::text[]) AS t(relation)
     CROSS JOIN LATERAL (SELECT to_regclass(quote_ident($3) || '.' || quote_ident(t.relation))::oid AS oid) r`,
    [relations, kinds, SCHEMA],
  );
  if (rows[0]?.creates_tables) {
    refuse(`it may create tables in schema ${SCHEMA}; run REVOKE CREATE ON SCHEMA ${SCHEMA} FROM PUBLIC as its owner`);
  }
  for (const row of rows) {
    const migrations = row.relation === MIGRATIONS_TABLE;
    if (!row.present) {
      if (migrations) continue;
      refuse(`its database has no table ${row.relation}; DATABASE_URL and DATABASE_OWNER_URL must name one database`);
    }
    const wanted = migrations ? [] : wantedPrivileges(row.relation, 'r', version);
    const extra = row.held.filter((p) => !wanted.includes(p));
    if (extra.length > 0) {
      refuse(
        `it may ${extra.join(', ')} on ${row.relation} (granted directly, to PUBLIC or to a role it belongs to, ` +
          'by another role than the owner); revoke that',
      );
    }
    const missing = wanted.filter((p) => !row.held.includes(p));
    if (missing.length > 0) {
      judge.refuse(
        'owner',
        `cannot grant ${missing.join(', ')} on ${row.relation} to the runtime role "${role}": ` +
          'it must name the role that owns the tables',
      );
    }
  }
  if (version >= 150000) {
    const { rows: setter } = await c.query<{ may: boolean }>(
      `SELECT has_parameter_privilege('session_replication_role', 'SET') AS may`,
    );
    if (setter[0].may) refuse('it may SET session_replication_role, which skips triggers; revoke that');
  }
}
