import { checkPersonName } from '../../domain/person-name';

/** One synthetic person in the sandbox's register, with what the card's front shows. */
export interface SyntheticIdentity {
  id_card: string;
  name: string;
  /** As printed on the card: 男 / 女. */
  sex: string;
  /** Ethnic group as printed, without 族: 汉, 维吾尔… */
  nation: string;
  /** As the upstream's OCR returns it: `YYYY/M/D`. */
  birth: string;
  address: string;
}

/** The deterministic "document database" the sandbox answers from. */
export class IdentityRegister {
  private readonly byIdCard = new Map<string, SyntheticIdentity>();

  constructor(identities: readonly SyntheticIdentity[]) {
    for (const identity of identities) this.byIdCard.set(identity.id_card, identity);
  }

  get size(): number {
    return this.byIdCard.size;
  }

  /** `normalizedIdCard`: 18 characters, upper-case X. */
  find(normalizedIdCard: string): SyntheticIdentity | undefined {
    return this.byIdCard.get(normalizedIdCard);
  }

  /** Names compare after normalisation (NFC, separator look-alikes), as a careful vendor would. */
  static sameName(a: string, b: string): boolean {
    const x = checkPersonName(a);
    const y = checkPersonName(b);
    return x.ok && y.ok && x.normalized === y.normalized;
  }
}
