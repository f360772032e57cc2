import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  APPEND_ONLY_TABLES,
  deriveRuntimePassword,
  RUNTIME_PRIVILEGES,
  runtimeRoleName,
  scramSha256Verifier,
  withCredentials,
} from './runtime-role';
import { migrationsDir, schemaFile } from './project-paths';

describe('runtime role', () => {
  describe('runtimeRoleName', () => {
    it('is the database name with _runtime', () => {
      expect(runtimeRoleName('idgate')).toBe('idgate_runtime');
    });

    it('stays within 63 bytes, distinct for long names that share their start', () => {
      const a = runtimeRoleName(`${'x'.repeat(60)}_a`);
      const b = runtimeRoleName(`${'x'.repeat(60)}_b`);
      for (const name of [a, b]) {
        expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
        expect(name).toMatch(/^x+_[0-9a-f]{8}_runtime$/);
      }
      expect(a).not.toBe(b);
      // Multi-byte names are cut on a character, not inside one.
      const cjk = runtimeRoleName('数据库'.repeat(10));
      expect(Buffer.byteLength(cjk)).toBeLessThanOrEqual(63);
      expect(cjk).not.toContain('\uFFFD');
    });
  });

  describe('deriveRuntimePassword', () => {
    it('is the same for every instance with the same secret, and differs per role and per secret', () => {
      const secret = Buffer.alloc(32, 7);
      const p = deriveRuntimePassword(secret, 'idgate_runtime');
      expect(deriveRuntimePassword(Buffer.alloc(32, 7), 'idgate_runtime')).toBe(p);
      expect(deriveRuntimePassword(secret, 'other_runtime')).not.toBe(p);
      expect(deriveRuntimePassword(Buffer.alloc(32, 8), 'idgate_runtime')).not.toBe(p);
      // URL-safe: it goes into a postgresql:// URL as is.
      expect(p).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });
  });

  describe('scramSha256Verifier', () => {
    // RFC 7677 §3: user "user", password "pencil".
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const authMessage = [
      'n=user,r=rOprNGfwEbeRWgbNEkqO',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');

    it("is PostgreSQL's format, and its keys check the RFC 7677 exchange both ways", () => {
      const verifier = scramSha256Verifier('pencil', salt, 4096);
      const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
      expect(m).not.toBeNull();
      const [, saltB64, storedB64, serverB64] = m!;
      expect(saltB64).toBe('W22ZaJ0SNY7soEsUEjb6gQ==');
      const serverSignature = createHmac('sha256', Buffer.from(serverB64, 'base64')).update(authMessage).digest();
      expect(serverSignature.toString('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
      // The server's check of the client's proof: ClientKey = proof XOR HMAC(StoredKey, AuthMessage).
      const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
      const clientSignature = createHmac('sha256', Buffer.from(storedB64, 'base64')).update(authMessage).digest();
      const clientKey = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]));
      expect(createHash('sha256').update(clientKey).digest('base64')).toBe(storedB64);
    });

    it('salts each verifier afresh', () => {
      expect(scramSha256Verifier('pencil')).not.toBe(scramSha256Verifier('pencil'));
    });
  });

  describe('withCredentials', () => {
    it('replaces the user and password of a URL, keeping host, database and options', () => {
      const url = withCredentials('postgresql://owner:s3cret@db.example:6543/idgate?sslmode=require', 'rt', 'p/w@x');
      const u = new URL(url);
      expect([u.username, decodeURIComponent(u.password), u.host, u.pathname]).toEqual([
        'rt',
        'p/w@x',
        'db.example:6543',
        '/idgate',
      ]);
      expect(u.searchParams.get('sslmode')).toBe('require');
    });

    it('puts them in the query for a URL without a host (a Unix socket), replacing any there', () => {
      const url = withCredentials('postgresql:///idgate?host=/run/postgresql&user=owner', 'rt', 'pw');
      const u = new URL(url);
      expect(u.searchParams.get('user')).toBe('rt');
      expect(u.searchParams.get('password')).toBe('pw');
      expect(u.searchParams.get('host')).toBe('/run/postgresql');
    });
  });

  describe('RUNTIME_PRIVILEGES', () => {
    it('names every table of schema.prisma and every view of the migrations, and nothing else', () => {
      const schema = readFileSync(schemaFile(), 'utf8');
      const tables = [...schema.matchAll(/@@map\("([^"]+)"\)/g)].map((m) => m[1]);
      const views = readdirSync(migrationsDir(), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .flatMap((d) => {
          const sql = readFileSync(path.join(migrationsDir(), d.name, 'migration.sql'), 'utf8');
          return [...sql.matchAll(/CREATE (?:OR REPLACE )?VIEW\s+"?([a-z_]+)"?/gi)].map((m) => m[1]);
        });
      expect(Object.keys(RUNTIME_PRIVILEGES).sort()).toEqual([...tables, ...views].sort());
    });

    it('gives SELECT and INSERT only on the audit tables', () => {
      for (const table of APPEND_ONLY_TABLES)
        expect([...RUNTIME_PRIVILEGES[table]].sort()).toEqual(['INSERT', 'SELECT']);
    });
  });
});
