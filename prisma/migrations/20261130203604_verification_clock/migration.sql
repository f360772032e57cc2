-- One clock for the timestamps of a verification: the database's.
--
-- Prisma fills `@default(now())` in the app, and the service set completed_at from the app's
-- clock too, each read at a different moment (the app's completed_at could be read before the
-- insert that took its created_at), so a local rejection could show completed_at a few ms
-- before created_at, and an app whose clock drifts from the database's would write both off.
-- Here the database stamps both, whatever the statement carried:
-- - on INSERT, created_at := clock_timestamp() (when the row is written, not when its
--   transaction began: a submission that queued for a lock is not made to look older);
-- - whenever completed_at is set (on INSERT, or an UPDATE that changes it: settling, the
--   sweeper, a late answer out of `unknown`), completed_at := the database's clock, never
--   before created_at;
-- - if created_at is moved by hand (an UPDATE), completed_at is kept from falling before it.
-- So completed_at >= created_at holds for every row however it is written. Rows that must
-- keep given timestamps (a data-only restore, seeding history) are written with the trigger
-- off: `SET session_replication_role = replica` (superuser; pg_restore --disable-triggers does
-- this), or ALTER TABLE ... DISABLE TRIGGER as the owner.
CREATE FUNCTION verifications_stamp_time() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.created_at := clock_timestamp();
    IF NEW.completed_at IS NOT NULL THEN
      NEW.completed_at := greatest(clock_timestamp(), NEW.created_at);
    END IF;
  ELSIF NEW.completed_at IS NOT NULL AND NEW.completed_at IS DISTINCT FROM OLD.completed_at THEN
    NEW.completed_at := greatest(clock_timestamp(), NEW.created_at);
  END IF;
  IF NEW.completed_at < NEW.created_at THEN
    NEW.completed_at := NEW.created_at;
  END IF;
  RETURN NEW;
END
$$;

-- UPDATE OF: statements that touch neither timestamp (charge settlement, purges, rekeying)
-- do not pay for the trigger.
CREATE TRIGGER verifications_stamp_time BEFORE INSERT OR UPDATE OF created_at, completed_at ON "verifications"
  FOR EACH ROW EXECUTE FUNCTION verifications_stamp_time();
