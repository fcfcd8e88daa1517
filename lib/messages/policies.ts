import { WebSocketError } from '../errors.js'
import { CloseCode } from '../protocol/close-codes.js'
import { InvalidMessageCode, createInvalidMessageError, type InvalidMessageError } from './errors.js'

/**
 * What a JSON consumer does with a message it cannot deliver: one that is
 * not JSON or fails `schema.message` (`onInvalidMessage`), and a binary one
 * (`onBinaryMessage`). The public types of these settings, with their
 * documentation, are in `settings.ts`; this module works on looser local
 * types because it cannot import the connection class a policy function
 * receives (`json-connection.ts` imports this module).
 */

const INVALID_MESSAGE_POLICIES = new Set(['reply', 'close', 'ignore'])
const BINARY_MESSAGE_POLICIES = new Set(['close', 'error', 'ignore', 'json'])

// A policy function takes a JsonWebSocketConnection; `never` accepts it without naming it.
type InvalidMessageCallback = (error: InvalidMessageError, conn: never) => void
type InvalidMessagePolicy = 'reply' | 'close' | 'ignore' | InvalidMessageCallback
type BinaryMessagePolicy = 'close' | 'error' | 'ignore' | 'json'

/** The policy settings as given by the app, before `checkMessageSettings`. */
export interface PolicySettings {
  onInvalidMessage?: InvalidMessagePolicy
  onBinaryMessage?: BinaryMessagePolicy
}

/**
 * Checks the policy settings where they are given, so mistakes fail at
 * startup, with the code of every bad option value (lib/fastify/settings.ts).
 */
export function checkMessageSettings (settings: PolicySettings, where: string): void {
  const invalid = settings.onInvalidMessage
  if (invalid !== undefined && typeof invalid !== 'function' && !INVALID_MESSAGE_POLICIES.has(invalid)) {
    throw new WebSocketError('WS_ERR_INVALID_OPTION', `${where}: onInvalidMessage must be 'reply', 'close', 'ignore' or a function, got ${JSON.stringify(invalid)}`)
  }
  const binary = settings.onBinaryMessage
  if (binary !== undefined && !BINARY_MESSAGE_POLICIES.has(binary)) {
    throw new WebSocketError('WS_ERR_INVALID_OPTION', `${where}: onBinaryMessage must be 'close', 'error', 'ignore' or 'json', got ${JSON.stringify(binary)}`)
  }
}

/** The part of a connection a policy acts on. */
export interface PolicyTarget {
  readonly readyState: number
  readonly bufferedAmount: number
  send (data: string): boolean
  close (code?: number, reason?: string): void
}

/** The logger of the upgrade request. */
export interface PolicyLog {
  debug (obj: unknown, msg?: string): void
  info (obj: unknown, msg?: string): void
}

const OPEN = 1

/**
 * The policies of one route, defaults applied. Shared by the route's
 * connections; holds no per-connection state. Each `reject…` returns the
 * error a policy function threw, for the caller to fail the connection
 * with, or undefined.
 */
export class MessagePolicies {
  readonly onInvalidMessage: InvalidMessagePolicy
  readonly onBinaryMessage: BinaryMessagePolicy
  // Answers to invalid messages stop once this much is queued (the connection's highWaterMark).
  readonly #replyLimit: number

  constructor (settings: PolicySettings & { highWaterMark: number }) {
    this.onInvalidMessage = settings.onInvalidMessage ?? 'reply'
    this.onBinaryMessage = settings.onBinaryMessage ?? 'close'
    this.#replyLimit = settings.highWaterMark
  }

  /** Whether binary messages are decoded as JSON rather than handed to `rejectBinary`. */
  get decodesBinary (): boolean {
    return this.onBinaryMessage === 'json'
  }

  /** Applies `onInvalidMessage`. */
  rejectInvalid (conn: PolicyTarget, error: InvalidMessageError, log: PolicyLog | undefined): unknown {
    const policy = this.onInvalidMessage
    if (policy === 'reply') {
      log?.debug({ err: error }, 'websocket message rejected')
      // A client that floods invalid messages without reading the answers gets no more of them.
      if (conn.readyState === OPEN && conn.bufferedAmount < this.#replyLimit) conn.send(JSON.stringify(error))
      return undefined
    }
    if (policy === 'close') {
      log?.info({ err: error, closeCode: error.closeCode }, 'websocket message rejected; closing the connection')
      if (conn.readyState === OPEN) conn.close(error.closeCode, error.closeReason)
      return undefined
    }
    log?.debug({ err: error }, 'websocket message rejected')
    if (policy === 'ignore') return undefined
    try {
      policy(error, conn as never)
    } catch (policyError) {
      return policyError
    }
    return undefined
  }

  /** Applies `onBinaryMessage` to a binary message the decoder did not decode. */
  rejectBinary (conn: PolicyTarget, log: PolicyLog | undefined): unknown {
    const policy = this.onBinaryMessage
    if (policy === 'ignore') {
      log?.debug({}, 'websocket binary message ignored by the JSON consumer')
      return undefined
    }
    if (policy === 'error') {
      return this.rejectInvalid(conn, createInvalidMessageError(InvalidMessageCode.BinaryMessage, 'binary messages are not accepted on this route'), log)
    }
    log?.info({ closeCode: CloseCode.UnsupportedData }, 'websocket binary message on a JSON route; closing the connection')
    if (conn.readyState === OPEN) conn.close(CloseCode.UnsupportedData, 'binary messages are not accepted')
    return undefined
  }
}
