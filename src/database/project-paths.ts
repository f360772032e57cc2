import { existsSync } from 'node:fs';
import path from 'node:path';

/** The repository root: the nearest folder above this file holding package.json (works from src/ and dist/). */
export function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('idgate: cannot find the project root (package.json)');
    dir = parent;
  }
  return dir;
}

export const prismaDir = () => path.join(projectRoot(), 'prisma');
export const migrationsDir = () => path.join(prismaDir(), 'migrations');
export const schemaFile = () => path.join(prismaDir(), 'schema.prisma');
