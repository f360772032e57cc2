-- reconciliation_lines becomes the staging table of the statement being reconciled (issue 15):
-- written by COPY while the upload streams, read once by the matching passes, then deleted.

-- Lines of completed reconciliations were kept until now; their reconciliation_items hold all of it.
DELETE FROM "reconciliation_lines" l
WHERE EXISTS (SELECT 1 FROM "reconciliations" r WHERE r."id" = l."reconciliation_id" AND r."state" = 'completed');

-- AlterTable
ALTER TABLE "reconciliation_lines" DROP CONSTRAINT "reconciliation_lines_pkey",
ADD COLUMN     "seen_before" BOOLEAN NOT NULL DEFAULT false;

-- Hand-written below (Prisma does not model table persistence).

-- No WAL for rows that live only until their reconciliation is matched; after a crash PostgreSQL
-- empties the table, and the reconciliations left 'loading' are swept as abandoned.
ALTER TABLE "reconciliation_lines" SET UNLOGGED;
