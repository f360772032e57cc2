import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';

/*
 * The witness folder is only a witness if the database cannot rewrite it. A database
 * superuser can write files as the database server's OS user (COPY … TO '<file>',
 * COPY … TO PROGRAM, untrusted languages), so that user must not be able to write the
 * folder, nor any folder above it in a way that lets it replace the folder (rename it
 * away and put another in its place). POSIX mode bits and owners only (ACLs are not
 * read): an entry is under a user's control when the user owns it (it may chmod) or
 * the bits that apply to the user allow writing. In a sticky folder (/tmp) only the
 * owner of an entry (or of the folder) may rename it.
 */

export interface PathEntry {
  path: string;
  uid: number;
  gid: number;
  mode: number;
}

export interface Principal {
  /** For messages: "user postgres", "any other user". */
  name: string;
  uid: number;
  gids: readonly number[];
}

/** Someone who is neither owner nor in the group: world-writable entries. */
export const ANYONE_ELSE: Principal = { name: 'any other user', uid: -1, gids: [] };

const STICKY = 0o1000;

export function controls(entry: PathEntry, p: Principal): boolean {
  if (entry.uid === p.uid) return true;
  if (p.gids.includes(entry.gid)) return (entry.mode & 0o020) !== 0;
  return (entry.mode & 0o002) !== 0;
}

/**
 * Why `p` could change what the witness folder holds, or null. `chain` runs from the
 * root to the witness folder, then the folders inside it (its day folders).
 */
export function witnessExposure(chain: readonly PathEntry[], witnessIndex: number, p: Principal): string | null {
  for (let i = witnessIndex; i < chain.length; i++) {
    if (controls(chain[i], p)) {
      return `${p.name} can write ${chain[i].path}${chain[i].uid === p.uid ? ' (it owns it)' : ''}`;
    }
  }
  for (let i = 0; i < witnessIndex; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (!controls(parent, p)) continue;
    const sticky = (parent.mode & STICKY) !== 0;
    if (!sticky || child.uid === p.uid || parent.uid === p.uid) {
      return `${p.name} can write ${parent.path} and so replace ${child.path}`;
    }
  }
  return null;
}

/** `name:x:uid:gid:…` lines → the user's uid and primary gid. */
export function parsePasswd(text: string, user: string): { uid: number; gid: number } | null {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

/** `name:x:gid:member,member` lines → the gids listing `user` as a member. */
export function parseGroupMemberships(text: string, user: string): number[] {
  const gids: number[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && f[3].split(',').includes(user)) gids.push(Number(f[2]));
  }
  return gids;
}

/** The OS user `name` from /etc/passwd and /etc/group, or null when this machine has no such user. */
export function osUser(name: string): Principal | null {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  const found = parsePasswd(passwd, name);
  if (!found) return null;
  let groups: number[] = [];
  try {
    groups = parseGroupMemberships(readFileSync('/etc/group', 'utf8'), name);
  } catch {
    // No group file: the primary group alone.
  }
  return { name: `user ${name}`, uid: found.uid, gids: [found.gid, ...groups] };
}

export interface WitnessFolderCheck {
  /** Why idgate must not start with this folder, or null. */
  refusal: string | null;
  /** What the operator must know, though idgate starts. */
  warning: string | null;
}

/**
 * Checks the (existing) witness folder against the database server's OS user:
 * - embedded PostgreSQL as root runs as user `postgres`;
 * - embedded as an ordinary user runs as that same user: no separation is possible on
 *   this machine, so a warning, not a refusal (a developer's `npm start` must work);
 * - with DATABASE_URL, the server's OS user is unknown: user `postgres` if this machine
 *   has one (a local server), and always anyone else (a world-writable path).
 */
export function checkWitnessFolder(dir: string, embedded: boolean): WitnessFolderCheck {
  const real = realpathSync(dir);
  const parts = real.split(path.sep).filter(Boolean);
  const paths = parts.map((_, i) => path.sep + parts.slice(0, i + 1).join(path.sep));
  paths.unshift(path.sep);
  const inside = readdirSync(real)
    .filter((n) => /^\d{4}-\d{2}-\d{2}$/.test(n))
    .map((n) => path.join(real, n));
  const chain = [...paths, ...inside].map((p) => {
    const s = statSync(p);
    return { path: p, uid: s.uid, gid: s.gid, mode: s.mode };
  });
  const witnessIndex = paths.length - 1;
  const myUid = process.getuid?.() ?? -1;
  const principals: Principal[] = [ANYONE_ELSE];
  const postgres = osUser('postgres');
  if (postgres && postgres.uid !== myUid && postgres.uid !== 0) principals.push(postgres);
  for (const p of principals) {
    const exposure = witnessExposure(chain, witnessIndex, p);
    if (exposure) {
      return {
        refusal:
          `the audit witness folder ${real} is not safe from the database: ${exposure}. ` +
          `A database superuser can write files as the database server's OS user; make the folder and its parents ` +
          `writable by idgate's user only (e.g. chown -R $(id -un) ${real} && chmod 755 ${real}), or set AUDIT_WITNESS_DIR`,
        warning: null,
      };
    }
  }
  const sameUser = (embedded && myUid !== 0) || (postgres !== null && postgres.uid === myUid);
  return {
    refusal: null,
    warning: sameUser
      ? `the database server runs as idgate's own OS user, so a database superuser could rewrite the audit witness ` +
        `folder ${real} (COPY … TO '<file>'). Set AUDIT_WITNESS_URL to a witness on another machine, or run ` +
        `PostgreSQL as another OS user.`
      : null,
  };
}
