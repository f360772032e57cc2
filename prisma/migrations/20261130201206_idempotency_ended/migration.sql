-- A request that answered 202 (its upstream answer still being written) marks its
-- Idempotency-Key `ended`, so a retry gets the verification as it stands at once
-- instead of 409 until the request deadline.
ALTER TABLE "idempotency_keys" DROP CONSTRAINT "idempotency_keys_state_check";
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_state_check" CHECK ("state" IN ('in_flight', 'ended', 'completed'));
