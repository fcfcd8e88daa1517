import type { FastifyInstance } from 'fastify'
import sjson from 'secure-json-parse'
import { InvalidMessageCode, createInvalidMessageError } from './errors.js'

/**
 * Bytes → JSON value: the first step of every incoming message on a JSON
 * consumer, before any schema. Knows nothing of validation or policies;
 * it only says "not JSON" (an `InvalidMessageError`) or "a binary message
 * this route does not decode" (`UNDECODED_BINARY`).
 */

/** Returned for a binary message when the route's `onBinaryMessage` is not `'json'`: the binary policy decides. */
export const UNDECODED_BINARY: unique symbol = Symbol('fastify-rfc6455.undecodedBinary')

type PoisoningAction = 'error' | 'remove' | 'ignore'

/** What secure-json-parse does with `__proto__` and `constructor.prototype` keys. */
export interface PoisoningOptions {
  protoAction: PoisoningAction
  constructorAction: PoisoningAction
}

const POISONING_ACTIONS = new Set(['error', 'remove', 'ignore'])
// fatal: a binary "JSON" message with bad UTF-8 is refused, not patched with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The app's own `onProtoPoisoning` / `onConstructorPoisoning`, so a
 * message is parsed as strictly as a request body; anything unknown is
 * read as 'error', the strictest.
 */
export function poisoningOptions (instance: FastifyInstance): PoisoningOptions {
  const config = instance.initialConfig as { onProtoPoisoning?: string, onConstructorPoisoning?: string } | undefined
  return {
    protoAction: poisoningAction(config?.onProtoPoisoning),
    constructorAction: poisoningAction(config?.onConstructorPoisoning)
  }
}

function poisoningAction (value: string | undefined): PoisoningAction {
  return value !== undefined && POISONING_ACTIONS.has(value) ? value as PoisoningAction : 'error'
}

/** The JSON decoder of one route; holds no per-message state, so its connections share it. */
export class JsonDecoder {
  readonly #poisoning: PoisoningOptions
  readonly #decodesBinary: boolean

  /** `decodesBinary`: the route's `onBinaryMessage` is `'json'`. */
  constructor (poisoning: PoisoningOptions, decodesBinary: boolean) {
    this.#poisoning = poisoning
    this.#decodesBinary = decodesBinary
  }

  /** The parsed value; throws an `InvalidMessageError` (`FST_ERR_WS_INVALID_JSON`) for anything that is not JSON. */
  decode (data: Buffer, isBinary: boolean): unknown {
    let text: string
    if (isBinary) {
      if (!this.#decodesBinary) return UNDECODED_BINARY
      try {
        text = utf8.decode(data)
      } catch (error) {
        throw createInvalidMessageError(InvalidMessageCode.InvalidJson, 'the binary message is not valid UTF-8', undefined, error)
      }
    } else {
      // A text message's UTF-8 was already checked by the protocol layer.
      text = data.toString()
    }
    try {
      // JSON.parse, then a key scan only if the text mentions __proto__ or constructor.
      return sjson.parse(text, undefined, this.#poisoning)
    } catch (error) {
      throw createInvalidMessageError(InvalidMessageCode.InvalidJson, (error as Error).message, undefined, error)
    }
  }
}
