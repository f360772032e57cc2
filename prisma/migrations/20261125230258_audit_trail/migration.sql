-- CreateTable
CREATE TABLE "audit_events" (
    "id" UUID NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor_type" VARCHAR(16) NOT NULL,
    "actor_id" VARCHAR(100),
    "actor_role" VARCHAR(32),
    "action" VARCHAR(64) NOT NULL,
    "target_type" VARCHAR(64),
    "target_id" VARCHAR(200),
    "outcome" VARCHAR(16) NOT NULL,
    "request_id" VARCHAR(128),
    "ip" VARCHAR(64),
    "details" JSONB NOT NULL DEFAULT '{}',
    "id_card_hmac" CHAR(64),
    "txid" BIGINT NOT NULL DEFAULT ((pg_current_xact_id())::text)::bigint,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_chain" (
    "seq" BIGINT NOT NULL,
    "event_id" UUID NOT NULL,
    "prev_hash" CHAR(64) NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "sealed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_chain_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "audit_checkpoints" (
    "id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "signed_at" TIMESTAMPTZ(3) NOT NULL,
    "key_id" VARCHAR(64) NOT NULL,
    "signature" VARCHAR(200) NOT NULL,

    CONSTRAINT "audit_checkpoints_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "audit_events_txid_id_idx" ON "audit_events"("txid", "id");

-- CreateIndex
CREATE INDEX "audit_events_occurred_at_id_idx" ON "audit_events"("occurred_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_actor_id_occurred_at_id_idx" ON "audit_events"("actor_id", "occurred_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_action_occurred_at_id_idx" ON "audit_events"("action", "occurred_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_target_type_occurred_at_id_idx" ON "audit_events"("target_type", "occurred_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_target_id_occurred_at_id_idx" ON "audit_events"("target_id", "occurred_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_outcome_occurred_at_id_idx" ON "audit_events"("outcome", "occurred_at", "id");

-- CreateIndex
CREATE INDEX "audit_events_id_card_hmac_occurred_at_id_idx" ON "audit_events"("id_card_hmac", "occurred_at", "id");

-- CreateIndex
CREATE UNIQUE INDEX "audit_chain_event_id_key" ON "audit_chain"("event_id");

-- CreateIndex
CREATE UNIQUE INDEX "audit_checkpoints_seq_key_id_key" ON "audit_checkpoints"("seq", "key_id");

-- AddForeignKey
ALTER TABLE "audit_chain" ADD CONSTRAINT "audit_chain_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "audit_events"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;

-- ── Hand-written (Prisma's diff does not model triggers) ─────────────────────
-- The audit tables are append-only: the database itself refuses UPDATE and
-- DELETE (row level) and TRUNCATE (statement level). Only a superuser who
-- disables these triggers can change history, and the hash chain and the
-- signed checkpoints exist to reveal that.
CREATE FUNCTION "audit_refuse_change"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit table "%" is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_events_append_only" BEFORE UPDATE OR DELETE ON "audit_events"
    FOR EACH ROW EXECUTE FUNCTION "audit_refuse_change"();
CREATE TRIGGER "audit_events_no_truncate" BEFORE TRUNCATE ON "audit_events"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_refuse_change"();

CREATE TRIGGER "audit_chain_append_only" BEFORE UPDATE OR DELETE ON "audit_chain"
    FOR EACH ROW EXECUTE FUNCTION "audit_refuse_change"();
CREATE TRIGGER "audit_chain_no_truncate" BEFORE TRUNCATE ON "audit_chain"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_refuse_change"();

CREATE TRIGGER "audit_checkpoints_append_only" BEFORE UPDATE OR DELETE ON "audit_checkpoints"
    FOR EACH ROW EXECUTE FUNCTION "audit_refuse_change"();
CREATE TRIGGER "audit_checkpoints_no_truncate" BEFORE TRUNCATE ON "audit_checkpoints"
    FOR EACH STATEMENT EXECUTE FUNCTION "audit_refuse_change"();

-- The chain is gap-free from 1 and its hashes are lowercase hex SHA-256.
ALTER TABLE "audit_chain" ADD CONSTRAINT "audit_chain_seq_positive" CHECK ("seq" >= 1);
ALTER TABLE "audit_chain" ADD CONSTRAINT "audit_chain_hash_hex"
    CHECK ("hash" ~ '^[0-9a-f]{64}$' AND "prev_hash" ~ '^[0-9a-f]{64}$');
