import type { ReconciliationItemView } from '../../src/billing/reconciliation/reconciliation-report';
import type { TestApp } from '../support/test-app';

/** Every item of a reconciliation, page by page, as finance reads them. */
export async function allReconciliationItems(
  t: TestApp,
  financeKey: string,
  id: string,
): Promise<ReconciliationItemView[]> {
  const out: ReconciliationItemView[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: ReconciliationItemView[]; next_cursor: string | null } } = await t.http
      .get(`/v1/billing/reconciliations/${id}/items`)
      .query(cursor ? { cursor, limit: 200 } : { limit: 200 })
      .set('Authorization', `Bearer ${financeKey}`)
      .expect(200);
    out.push(...page.body.items);
    cursor = page.body.next_cursor;
  } while (cursor);
  return out;
}
