/** Who may call what (SPEC §3). */
export const ROLES = ['client', 'compliance', 'finance', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated caller of a request. */
export interface Principal {
  keyId: string;
  /** The visible part of the key (never the secret). */
  keyPrefix: string;
  role: Role;
  /** Set for `client` keys only: the tenant every client-scoped query is bound to. */
  clientId: string | null;
}
