/**
 * Outgoing messages → text, for `sendJson` / `serializeJson`: with the
 * serializers `route-messages.ts` compiled from `schema.outgoing` (only
 * declared fields are sent, as for a reply), else `JSON.stringify`.
 */

import { withCode } from '../protocol/errors.js'

/** What a serializer compiler returns. */
export type Serializer = (data: unknown) => string

/** Checks what a serializer compiler returned, so a bad compiler fails the route at startup. */
export function checkSerializer (fn: unknown): Serializer {
  if (typeof fn !== 'function') throw new TypeError('the serializer compiler did not return a function')
  return fn as Serializer
}

/** The outgoing side of one route; shared by its connections. */
export interface MessageSerializer {
  /** The message as text; throws a TypeError (code `FST_ERR_WS_SERIALIZATION`) for a message that has no JSON text. */
  serialize (message: unknown): string
}

function checkText (text: unknown): string {
  if (typeof text !== 'string') throw withCode(new TypeError('the outgoing message cannot be serialized to JSON'), 'FST_ERR_WS_SERIALIZATION')
  return text
}

/** No `schema.outgoing`. */
export const plainJson: MessageSerializer = {
  serialize (message: unknown): string {
    return checkText(JSON.stringify(message))
  }
}

/** `schema.outgoing` serialized as a whole. */
export class WholeSchemaSerializer implements MessageSerializer {
  readonly #serialize: Serializer

  constructor (serialize: Serializer) {
    this.#serialize = serialize
  }

  serialize (message: unknown): string {
    return checkText(this.#serialize(message))
  }
}

/**
 * A discriminated union in `schema.outgoing`: the message's tag picks the
 * branch's serializer, as on the incoming side, so one branch's serializer
 * runs instead of one that must first find out which branch the message
 * is. A tag that names no branch is the sender's bug: it throws.
 */
export class DiscriminatedUnionSerializer implements MessageSerializer {
  readonly #variants: Serializer[]
  readonly #key: string
  // tag value → index in #variants
  readonly #indexOf: Map<unknown, number>

  constructor (variants: Serializer[], key: string, indexOf: Map<unknown, number>) {
    this.#variants = variants
    this.#key = key
    this.#indexOf = indexOf
  }

  serialize (message: unknown): string {
    const tag = message !== null && typeof message === 'object' ? (message as Record<string, unknown>)[this.#key] : undefined
    const index = this.#indexOf.get(tag)
    if (index === undefined) {
      throw withCode(new TypeError(`the outgoing message's "${this.#key}" (${JSON.stringify(tag)}) matches no variant of schema.outgoing`), 'FST_ERR_WS_SERIALIZATION')
    }
    return checkText(this.#variants[index](message))
  }
}
