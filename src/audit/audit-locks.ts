/*
 * Transaction-scoped advisory locks of the audit trail. The sealer's is also the witness's:
 * chain entries are appended, and witness records written, by one holder at a time across
 * all instances, so the witness keeps one history whose every record names the one before.
 */
export const SEALER_LOCK = 7_265_001;
export const CHECKPOINT_LOCK = 7_265_002;
