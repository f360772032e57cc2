import { liveSchemaDrift, pendingSchemaChange } from '../src/database/migrations';
import { createTestDatabase, TestDatabase } from './support/databases';

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  // As the owner: the diff replays the migrations in a shadow database it creates (CREATE DATABASE).
  it('the migrations build exactly the schema in schema.prisma (no forgotten migration)', async () => {
    expect(await pendingSchemaChange(db.adminUrl)).toBeNull();
  });

  it('a database migrated at start shows no drift from schema.prisma', async () => {
    expect(await liveSchemaDrift(db.adminUrl)).toBeNull();
  });
});
