// The reliability suite (`npm run test:reliability`): scale-out, fault matrix,
// kill -9, PostgreSQL outage and fuzzing. Same transform and global setup as
// `npm test`, which does not run these files (they end in .rel-spec.ts).
const base = require('./jest.config.js');

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/test/reliability'],
  testMatch: ['<rootDir>/test/reliability/**/*.rel-spec.ts'],
  testTimeout: 300000,
  // Suites start processes, servers and load of their own: one at a time keeps them from starving each other on 2 cores.
  maxWorkers: 1,
};
