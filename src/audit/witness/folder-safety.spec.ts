import { ANYONE_ELSE, controls, parseGroupMemberships, parsePasswd, Principal, witnessExposure } from './folder-safety';

const postgres: Principal = { name: 'user postgres', uid: 101, gids: [104, 50] };
const dir = (path: string, uid: number, gid: number, mode: number) => ({ path, uid, gid, mode });

describe('witness folder safety', () => {
  it('a user controls what it owns, or what the bits that apply to it let it write', () => {
    expect(controls(dir('/w', 101, 0, 0o500), postgres)).toBe(true); // owner: may chmod
    expect(controls(dir('/w', 0, 104, 0o775), postgres)).toBe(true); // its group may write
    expect(controls(dir('/w', 0, 104, 0o755), postgres)).toBe(false);
    expect(controls(dir('/w', 0, 0, 0o757), postgres)).toBe(true); // others may write
    expect(controls(dir('/w', 0, 104, 0o707), postgres)).toBe(false); // group bits apply to a member, not others'
    expect(controls(dir('/w', 0, 0, 0o777), ANYONE_ELSE)).toBe(true);
  });

  const root = dir('/', 0, 0, 0o755);
  const data = dir('/srv', 0, 0, 0o755);
  const witness = dir('/srv/witness', 0, 0, 0o755);

  it('accepts a folder only its owner can write, under parents only root can write', () => {
    expect(witnessExposure([root, data, witness], 2, postgres)).toBeNull();
    expect(witnessExposure([root, data, witness], 2, ANYONE_ELSE)).toBeNull();
  });

  it('refuses a folder the user can write, a day folder inside it, or a parent that lets it replace the folder', () => {
    expect(witnessExposure([root, data, dir('/srv/witness', 101, 104, 0o700)], 2, postgres)).toBe(
      'user postgres can write /srv/witness (it owns it)',
    );
    expect(witnessExposure([root, data, witness, dir('/srv/witness/2026-01-01', 0, 104, 0o775)], 2, postgres)).toBe(
      'user postgres can write /srv/witness/2026-01-01',
    );
    expect(witnessExposure([root, dir('/srv', 0, 0, 0o777), witness], 2, postgres)).toBe(
      'user postgres can write /srv and so replace /srv/witness',
    );
  });

  it('in a sticky parent (/tmp) only the owner of the folder (or of the parent) can replace it', () => {
    const tmp = dir('/tmp', 0, 0, 0o1777);
    expect(witnessExposure([root, tmp, dir('/tmp/witness', 0, 0, 0o755)], 2, postgres)).toBeNull();
    expect(witnessExposure([root, tmp, dir('/tmp/witness', 101, 0, 0o555)], 2, postgres)).toMatch(/owns it/);
    const pgTmp = dir('/tmp', 101, 0, 0o1777);
    expect(witnessExposure([root, pgTmp, dir('/tmp/witness', 0, 0, 0o755)], 2, postgres)).toBe(
      'user postgres can write /tmp and so replace /tmp/witness',
    );
  });

  it('reads users and group memberships from passwd and group files', () => {
    const passwd =
      'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n';
    expect(parsePasswd(passwd, 'postgres')).toEqual({ uid: 101, gid: 104 });
    expect(parsePasswd(passwd, 'nobody')).toBeNull();
    const group = 'root:x:0:\nssl-cert:x:50:postgres\npostgres:x:104:\nadm:x:4:syslog,postgres2\n';
    expect(parseGroupMemberships(group, 'postgres')).toEqual([50]);
  });
});
