import { withCode } from '../protocol/errors.js'
import { missingTag, notAnObject, schemaViolation, unknownMessageType, type SchemaErrorFormatter } from './errors.js'

/**
 * Running the validators `route-messages.ts` compiled from `schema.message`
 * on a parsed value. A validator's result is taken in every shape Fastify
 * accepts for request parts: Ajv's boolean with `.errors`, `{ value }` or
 * `{ error }` (TypeBox, Zod adapters…), and Ajv's coercion of the root
 * value through its parent object.
 */

/** What a validator compiler returns (Ajv marks its functions with `schemaEnv`). */
export type Validator = ((data: unknown, dataCxt?: object) => unknown) & { errors?: unknown, schemaEnv?: unknown, $async?: unknown }

/** Checks what a validator compiler returned, so a bad compiler fails the route at startup. */
export function checkValidator (fn: unknown): Validator {
  if (typeof fn !== 'function') throw new TypeError('the validator compiler did not return a function')
  if ((fn as Validator).$async === true) throw new TypeError('asynchronous ($async) schemas are not supported for WebSocket messages')
  return fn as Validator
}

// What `check` returns for a value the validator refused (its errors wait in `lastErrors`).
const INVALID: unique symbol = Symbol('fastify-rfc6455.invalid')

/** A route's compiled `schema.message`; one per route, shared by its connections. */
export abstract class MessageValidator {
  protected readonly formatter: SchemaErrorFormatter | undefined
  // Ajv can replace the root value (type coercion) only through its parent: one holder, reused.
  readonly #holder: { message: unknown } = { message: undefined }
  readonly #holderContext: object = { parentData: this.#holder, parentDataProperty: 'message' } // as Fastify passes for request parts
  // Set by `check` with INVALID, and taken at once: never kept past the message that caused it.
  protected lastErrors: unknown = undefined

  constructor (formatter: SchemaErrorFormatter | undefined) {
    this.formatter = formatter
  }

  /**
   * The validated (possibly coerced) message; throws an `InvalidMessageError`.
   * `discriminator` is the property `onJson(discriminator, handlers)` picks
   * handlers by, or null.
   */
  abstract validate (value: unknown, discriminator: string | null): unknown

  /** Like `check`, but throws the validator's errors as an `InvalidMessageError`. */
  protected run (validate: Validator, value: unknown): unknown {
    const checked = this.check(validate, value)
    if (checked !== INVALID) return checked
    const errors = this.lastErrors
    this.lastErrors = undefined
    throw schemaViolation(errors, this.formatter)
  }

  /** The validated (possibly coerced) value, or INVALID with the errors in `lastErrors`. */
  protected check (validate: Validator, value: unknown): unknown {
    let result: unknown
    if (validate.schemaEnv !== undefined) {
      // An Ajv function: let it coerce the root value through the holder.
      this.#holder.message = value
      result = validate(value, this.#holderContext)
      value = this.#holder.message
      this.#holder.message = undefined
    } else {
      result = validate(value)
    }
    if (result === true) return value
    if (result === false) {
      this.lastErrors = validate.errors
      return INVALID
    }
    if (result !== null && typeof result === 'object') {
      if (typeof (result as any).then === 'function') {
        throw withCode(new TypeError('asynchronous validators are not supported for WebSocket messages'), 'FST_ERR_WS_ASYNC_VALIDATOR')
      }
      const error = (result as { error?: unknown }).error
      if (error !== undefined && error !== null && error !== false) {
        this.lastErrors = error
        return INVALID
      }
      if ('value' in result) return (result as { value: unknown }).value
    }
    return value
  }
}

/** `schema.message` validated as a whole. */
export class WholeSchemaValidator extends MessageValidator {
  readonly #validate: Validator

  constructor (validate: Validator, formatter: SchemaErrorFormatter | undefined) {
    super(formatter)
    this.#validate = validate
  }

  validate (value: unknown): unknown {
    return this.run(this.#validate, value)
  }
}

/**
 * A discriminated union (see `splitDiscriminatedUnion`): the message's tag
 * picks the one branch to validate, which costs one branch instead of all
 * and reports that branch's errors instead of every branch's.
 */
export class DiscriminatedUnionValidator extends MessageValidator {
  readonly #variants: Validator[]
  // tag property → tag value → index in #variants; several properties may discriminate.
  readonly #keys: Map<string, Map<unknown, number>>
  // The tag property used unless `onJson` names another one that discriminates.
  readonly #primaryKey: string
  // The whole union, for a tag that names no variant as sent but may once coerced.
  readonly #union: Validator

  constructor (variants: Validator[], union: Validator, keys: Map<string, Map<unknown, number>>, formatter: SchemaErrorFormatter | undefined) {
    super(formatter)
    this.#variants = variants
    this.#union = union
    this.#keys = keys
    this.#primaryKey = keys.keys().next().value!
  }

  validate (value: unknown, discriminator: string | null): unknown {
    const key = discriminator !== null && this.#keys.has(discriminator) ? discriminator : this.#primaryKey
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw notAnObject(this.formatter)
    const index = this.#keys.get(key)!.get((value as Record<string, unknown>)[key])
    if (index !== undefined) return this.run(this.#variants[index], value)
    return this.#validateUntagged(value, key)
  }

  /**
   * A message whose tag names no variant as sent. Splitting matched the tag
   * strictly, but the validator Fastify would use on the whole union may
   * coerce it (`"1"` for `const: 1` under the default Ajv options), so that
   * validator decides whether the message is valid.
   */
  #validateUntagged (value: object, key: string): unknown {
    const map = this.#keys.get(key)!
    const tag = (value as Record<string, unknown>)[key]
    const checked = this.check(this.#union, value)
    this.lastErrors = undefined // one error per branch: naming the bad tag says more
    if (checked !== INVALID && checked !== null && typeof checked === 'object' && map.has((checked as Record<string, unknown>)[key])) {
      return checked
    }
    if (tag === undefined) throw missingTag(key, this.formatter)
    throw unknownMessageType(key, tag, [...map.keys()])
  }
}

/**
 * The handler name of a message for `onJson(discriminator, handlers)`:
 * its `discriminator` property, which must name one of the handlers.
 * Checked after validation, and without a schema too.
 */
export function handlerTag (value: unknown, discriminator: string, handlers: object, formatter: SchemaErrorFormatter | undefined): string | number {
  const tag = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[discriminator] : undefined
  if ((typeof tag === 'string' || typeof tag === 'number') && Object.hasOwn(handlers, tag)) return tag
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw notAnObject(formatter)
  throw unknownMessageType(discriminator, tag, Object.keys(handlers))
}
