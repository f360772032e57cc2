-- AlterTable
ALTER TABLE "audit_checkpoints" ADD COLUMN     "prev_digest" CHAR(64),
ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "audit_events" ADD COLUMN     "mac" CHAR(64);


-- The database, not the caller, says when an event happened: clock_timestamp() at insert,
-- whatever the INSERT carried (a back-dated row cannot be written with the INSERT right alone).
CREATE FUNCTION audit_events_stamp_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.occurred_at := clock_timestamp();
  RETURN NEW;
END
$$;

CREATE TRIGGER audit_events_stamp_time BEFORE INSERT ON "audit_events"
  FOR EACH ROW EXECUTE FUNCTION audit_events_stamp_time();
