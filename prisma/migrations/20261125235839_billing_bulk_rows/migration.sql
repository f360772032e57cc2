-- DropForeignKey
ALTER TABLE "reconciliation_items" DROP CONSTRAINT "reconciliation_items_reconciliation_id_fkey";

-- DropForeignKey
ALTER TABLE "reconciliation_lines" DROP CONSTRAINT "reconciliation_lines_reconciliation_id_fkey";
