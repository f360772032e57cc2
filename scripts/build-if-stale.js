#!/usr/bin/env node
/*
 * Builds dist/ with `nest build` only when the sources changed since the last build, so that
 * `npm start`, the CLI and the tests do not spend 10–70 s rebuilding an unchanged tree.
 * "Changed" = the list of (path, size, mtime) of everything the build reads differs from
 * the one recorded in dist/.build-fingerprint by the last successful build.
 * Without the Nest CLI (a production install without devDependencies) it only checks
 * that dist/ exists.
 */
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, readdirSync, readFileSync, statSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const stampFile = path.join(root, 'dist', '.build-fingerprint');
const inputs = ['src', 'tsconfig.json', 'tsconfig.build.json', 'nest-cli.json', 'package-lock.json'];

function walk(entry, out) {
  const full = path.join(root, entry);
  if (!existsSync(full)) return;
  const st = statSync(full);
  if (st.isDirectory()) {
    for (const name of readdirSync(full).sort()) walk(path.join(entry, name), out);
  } else {
    out.push(`${entry}\t${st.size}\t${Math.floor(st.mtimeMs)}`);
  }
}

function fingerprint() {
  const lines = [];
  for (const input of inputs) walk(input, lines);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

const current = fingerprint();
if (process.argv.includes('--record')) {
  // After a plain `nest build` (npm run build): the output is fresh, say so for the next check.
  writeFileSync(stampFile, current + '\n');
  process.exit(0);
}
const built = existsSync(path.join(root, 'dist', 'main.js')) && existsSync(stampFile);
if (built && readFileSync(stampFile, 'utf8').trim() === current) process.exit(0);

const nest = path.join(root, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js');
if (!existsSync(nest)) {
  if (existsSync(path.join(root, 'dist', 'main.js'))) process.exit(0);
  process.stderr.write('idgate: dist/ is missing and the Nest CLI is not installed: run npm ci (with dev dependencies)\n');
  process.exit(1);
}
if (!process.argv.includes('--quiet')) process.stderr.write('idgate: sources changed, building (nest build)…\n');
const result = spawnSync(process.execPath, [nest, 'build'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(stampFile, current + '\n');
