import { liveSchemaDrift, pendingSchemaChange } from '../src/database/migrations';
import { createTestDatabase, TestDatabase } from './support/databases';

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('the migrations build exactly the schema in schema.prisma (no forgotten migration)', async () => {
    expect(await pendingSchemaChange(db.url)).toBeNull();
  });

  it('a database migrated at start shows no drift from schema.prisma', async () => {
    expect(await liveSchemaDrift(db.url)).toBeNull();
  });
});
