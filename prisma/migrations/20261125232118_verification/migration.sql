-- CreateEnum
CREATE TYPE "VerificationStatus" AS ENUM ('pending', 'completed', 'failed', 'unknown');

-- CreateEnum
CREATE TYPE "ChargeStatus" AS ENUM ('charged', 'not_charged', 'unknown');

-- CreateTable
CREATE TABLE "verifications" (
    "id" UUID NOT NULL,
    "client_id" UUID NOT NULL,
    "api_key_id" UUID NOT NULL,
    "channel" VARCHAR(16) NOT NULL,
    "mode" VARCHAR(16) NOT NULL,
    "reference" VARCHAR(255),
    "status" "VerificationStatus" NOT NULL,
    "result" VARCHAR(4),
    "description" VARCHAR(200),
    "charge_status" "ChargeStatus" NOT NULL,
    "unit_price" INTEGER NOT NULL,
    "amount" INTEGER,
    "currency" CHAR(3) NOT NULL,
    "local_check" BOOLEAN NOT NULL DEFAULT false,
    "reused_from_id" UUID,
    "name_enc" TEXT,
    "id_card_enc" TEXT,
    "ocr_enc" TEXT,
    "id_card_hmac" CHAR(64),
    "name_hmac" CHAR(64),
    "upstream_trace_id" VARCHAR(128),
    "upstream_attempts" INTEGER NOT NULL DEFAULT 0,
    "upstream_error" VARCHAR(64),
    "pii_purged_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMPTZ(3),

    CONSTRAINT "verifications_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "idempotency_keys" (
    "client_id" UUID NOT NULL,
    "key" VARCHAR(255) NOT NULL,
    "request_hash" CHAR(64) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "verification_id" UUID,
    "response_status" INTEGER,
    "response_enc" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("client_id","key")
);

-- CreateTable
CREATE TABLE "client_policies" (
    "client_id" UUID NOT NULL,
    "daily_limit" INTEGER,
    "monthly_spend_cap" INTEGER,
    "reuse_window_seconds" INTEGER,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "client_policies_pkey" PRIMARY KEY ("client_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "verifications_upstream_trace_id_key" ON "verifications"("upstream_trace_id");

-- CreateIndex
CREATE INDEX "verifications_client_id_id_idx" ON "verifications"("client_id", "id");

-- CreateIndex
CREATE INDEX "verifications_client_id_created_at_idx" ON "verifications"("client_id", "created_at");

-- CreateIndex
CREATE INDEX "verifications_created_at_idx" ON "verifications"("created_at");

-- CreateIndex
CREATE INDEX "verifications_status_created_at_idx" ON "verifications"("status", "created_at");

-- CreateIndex
CREATE INDEX "verifications_id_card_hmac_idx" ON "verifications"("id_card_hmac");

-- CreateIndex
CREATE INDEX "verifications_client_id_reference_idx" ON "verifications"("client_id", "reference");

-- CreateIndex
CREATE INDEX "verifications_client_id_id_card_hmac_name_hmac_created_at_idx" ON "verifications"("client_id", "id_card_hmac", "name_hmac", "created_at");

-- CreateIndex
CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys"("expires_at");

-- CreateIndex
CREATE INDEX "idempotency_keys_state_created_at_idx" ON "idempotency_keys"("state", "created_at");

-- AddForeignKey
ALTER TABLE "verifications" ADD CONSTRAINT "verifications_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "client_policies" ADD CONSTRAINT "client_policies_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Invariants of the verification record (Prisma does not model CHECK constraints).
ALTER TABLE "verifications" ADD CONSTRAINT "verifications_channel_check" CHECK ("channel" IN ('api', 'drop_in'));
ALTER TABLE "verifications" ADD CONSTRAINT "verifications_mode_check" CHECK ("mode" IN ('name_id_card', 'image'));
ALTER TABLE "verifications" ADD CONSTRAINT "verifications_result_check"
    CHECK ("result" IS NULL OR "result" IN ('0', '-1', '-2', '-3', '-4', '-5', '-6', '-7'));
-- A completed verification has a result, and its charge follows from the answer.
ALTER TABLE "verifications" ADD CONSTRAINT "verifications_completed_check"
    CHECK ("status" <> 'completed' OR ("result" IS NOT NULL AND "charge_status" <> 'unknown'));
ALTER TABLE "verifications" ADD CONSTRAINT "verifications_amount_check"
    CHECK ((("charge_status" = 'unknown') = ("amount" IS NULL)) AND ("amount" IS NULL OR "amount" >= 0));
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_state_check" CHECK ("state" IN ('in_flight', 'completed'));
