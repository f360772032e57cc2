-- CreateTable
CREATE TABLE "prices" (
    "id" UUID NOT NULL,
    "amount" INTEGER NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "valid_from" TIMESTAMPTZ(3) NOT NULL,
    "created_by_key_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "prices_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "reconciliations" (
    "id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_by_key_id" UUID,
    "file_sha256" CHAR(64) NOT NULL,
    "file_bytes" BIGINT NOT NULL,
    "line_count" INTEGER NOT NULL,
    "period_from" TIMESTAMPTZ(3),
    "period_to" TIMESTAMPTZ(3),
    "period_source" VARCHAR(16) NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "counts" JSONB NOT NULL,
    "amounts" JSONB NOT NULL,
    "settled" JSONB NOT NULL,
    "state" VARCHAR(16) NOT NULL,

    CONSTRAINT "reconciliations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "reconciliation_lines" (
    "reconciliation_id" UUID NOT NULL,
    "line_no" INTEGER NOT NULL,
    "trace_id" VARCHAR(128),
    "called_at" TIMESTAMPTZ(3),
    "result" VARCHAR(8),
    "charged" BOOLEAN,
    "amount" INTEGER,
    "problem" VARCHAR(300),

    CONSTRAINT "reconciliation_lines_pkey" PRIMARY KEY ("reconciliation_id","line_no")
);

-- CreateTable
CREATE TABLE "reconciliation_items" (
    "reconciliation_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "line_no" INTEGER,
    "status" VARCHAR(24) NOT NULL,
    "trace_id" VARCHAR(128),
    "called_at" TIMESTAMPTZ(3),
    "vendor_result" VARCHAR(8),
    "vendor_charged" BOOLEAN,
    "vendor_amount" INTEGER,
    "verification_id" UUID,
    "match_method" VARCHAR(16),
    "internal_charge_status" VARCHAR(16),
    "internal_result" VARCHAR(4),
    "internal_amount" INTEGER,
    "settlement" VARCHAR(16),
    "problem" VARCHAR(300),

    CONSTRAINT "reconciliation_items_pkey" PRIMARY KEY ("reconciliation_id","seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "prices_valid_from_key" ON "prices"("valid_from");

-- CreateIndex
CREATE INDEX "reconciliations_created_at_idx" ON "reconciliations"("created_at");

-- CreateIndex
CREATE INDEX "reconciliation_items_reconciliation_id_status_seq_idx" ON "reconciliation_items"("reconciliation_id", "status", "seq");

-- AddForeignKey
ALTER TABLE "reconciliation_lines" ADD CONSTRAINT "reconciliation_lines_reconciliation_id_fkey" FOREIGN KEY ("reconciliation_id") REFERENCES "reconciliations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "reconciliation_items" ADD CONSTRAINT "reconciliation_items_reconciliation_id_fkey" FOREIGN KEY ("reconciliation_id") REFERENCES "reconciliations"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Hand-written below (Prisma does not model views, CHECK constraints or triggers).

-- The verification module's published read interface for set-based billing SQL
-- (usage, reconciliation). Billing reads verifications only through this view and
-- changes them only through ChargeSettlementService (src/verification/). Its
-- columns are a contract: add columns freely, never rename or drop one without
-- changing billing in the same commit. No personal data is exposed here.
CREATE VIEW "verification_charges" AS
SELECT
    "id",
    "client_id",
    "upstream_trace_id",
    "created_at",
    "completed_at",
    "result",
    "status"::text AS "status",
    "charge_status"::text AS "charge_status",
    "unit_price",
    "amount",
    "currency"
FROM "verifications";

ALTER TABLE "prices" ADD CONSTRAINT "prices_amount_check" CHECK ("amount" >= 0);
ALTER TABLE "prices" ADD CONSTRAINT "prices_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$');

-- Price history is immutable: a price is changed by adding one with a later valid_from.
CREATE FUNCTION "prices_refuse_change"() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'prices are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER "prices_append_only" BEFORE UPDATE OR DELETE ON "prices"
    FOR EACH ROW EXECUTE FUNCTION "prices_refuse_change"();
CREATE TRIGGER "prices_no_truncate" BEFORE TRUNCATE ON "prices"
    FOR EACH STATEMENT EXECUTE FUNCTION "prices_refuse_change"();

ALTER TABLE "reconciliation_items" ADD CONSTRAINT "reconciliation_items_status_check" CHECK ("status" IN (
    'matched', 'missing_internal', 'missing_vendor', 'charge_mismatch', 'amount_mismatch', 'result_mismatch',
    'duplicate', 'malformed', 'not_billed'));
ALTER TABLE "reconciliation_items" ADD CONSTRAINT "reconciliation_items_settlement_check"
    CHECK ("settlement" IS NULL OR "settlement" IN ('charged', 'not_charged'));
ALTER TABLE "reconciliations" ADD CONSTRAINT "reconciliations_period_source_check"
    CHECK ("period_source" IN ('explicit', 'statement', 'none'));
ALTER TABLE "reconciliations" ADD CONSTRAINT "reconciliations_state_check" CHECK ("state" IN ('loading', 'completed'));
