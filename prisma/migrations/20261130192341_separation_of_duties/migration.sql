-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "created_by_key_id" UUID;

-- CreateTable
CREATE TABLE "approval_requests" (
    "id" UUID NOT NULL,
    "action" VARCHAR(64) NOT NULL,
    "payload" JSONB NOT NULL,
    "requested_by_key_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "approved_by_key_id" UUID,
    "approved_at" TIMESTAMPTZ(3),
    "consumed_at" TIMESTAMPTZ(3),

    CONSTRAINT "approval_requests_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "approval_requests_requested_by_key_id_idx" ON "approval_requests"("requested_by_key_id");
