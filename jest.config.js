// jest runs TypeScript and Nest's ESM packages through swc (CommonJS output).
// Dynamic import() is kept native: the Prisma client loads its wasm with it
// (hence `node --experimental-vm-modules` in `npm test`).
const swc = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs', ignoreDynamic: true },
  sourceMaps: 'inline',
};

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', swc],
    '^.+\\.m?js$': ['@swc/jest', { ...swc, jsc: { ...swc.jsc, parser: { syntax: 'ecmascript' } } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@prisma/schema-engine-wasm)/)'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
  // Each worker keeps the modules of every suite it ran (Nest's ESM packages through swc): past this
  // it is replaced before its next suite. A worker at 1.9 GB spent the memory-sampling export suite's
  // forced GCs (one per 500 ms) in collection, and that suite timed out.
  workerIdleMemoryLimit: '768MB',
};
