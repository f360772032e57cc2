import { getMetadataStorage, IS_OPTIONAL, ValidateIf, ValidationTypes } from 'class-validator';

/*
 * `null` is refused for every DTO property by the global validation pipe
 * (class-validator's @IsOptional lets it through to services, where it fails in
 * the database or is sent upstream). A property where null means something,
 * such as "no limit", says so with @Nullable().
 */

const NULLABLE_CONTEXT = 'idgateNullable';

/**
 * Allows `null` for this property; its other validators are skipped for null.
 * A @ValidateIf tagged through its context: class-validator metadata, so that
 * subclasses and Swagger's mapped types (PartialType, IntersectionType…) inherit it.
 */
export function Nullable(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== null, { context: { [NULLABLE_CONTEXT]: true } });
}

export interface PropertyRules {
  nullable: boolean;
  optional: boolean;
}

type Class = abstract new (...args: never[]) => unknown;

/** Decorators run once, at load: the rules of a class never change, so they are read once. */
const cache = new WeakMap<Class, Map<string, PropertyRules>>();

/** The properties a DTO class validates (its own and inherited), and whether each may be null or left out. */
export function propertyRules(type: Class): Map<string, PropertyRules> {
  const cached = cache.get(type);
  if (cached) return cached;
  const rules = new Map<string, PropertyRules>();
  for (const m of getMetadataStorage().getTargetValidationMetadatas(type, '', true, false)) {
    const rule = rules.get(m.propertyName) ?? { nullable: false, optional: false };
    if (m.type === ValidationTypes.CONDITIONAL_VALIDATION) {
      if ((m.context as Record<string, unknown> | undefined)?.[NULLABLE_CONTEXT] === true) rule.nullable = true;
      if (m.name === IS_OPTIONAL) rule.optional = true;
    }
    rules.set(m.propertyName, rule);
  }
  cache.set(type, rules);
  return rules;
}
