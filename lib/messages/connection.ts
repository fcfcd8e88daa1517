import type { Duplex } from 'node:stream'
import { WebSocketConnection, type ConnectionOptions, type SendCallback } from '../connection.js'
import { CloseCode } from '../protocol/close-codes.js'
import { SKIP, type RouteMessages } from './codec.js'
import { InvalidMessageError } from './errors.js'
import type { DiscriminatorOf, JsonMessageHandler, VariantHandlers } from './types.js'

type AnyHandler = (message: unknown, conn: unknown) => unknown

interface JsonConsumer {
  /** 'onJson' or 'messages()', for the error when a second one is attached. */
  kind: string
  handler: AnyHandler | null
  handlers: Record<string, AnyHandler> | null
  discriminator: string | null
  /** A policy closed the connection: nothing more is read. */
  stopped: boolean
}

const OPEN = WebSocketConnection.OPEN

/** @internal Installs the route's failure handling (errorHandler / log + 1011) on a connection. */
export const kSetFailureHandler = Symbol('fastify-rfc6455.setFailureHandler')

/**
 * The connection a WebSocket route handler receives: a `WebSocketConnection`
 * that also speaks JSON. `In` is the type of incoming messages (from
 * `schema.message`), `Out` the type `sendJson` accepts (from
 * `schema.outgoing`); both are inferred by the app's type provider.
 *
 * Raw `message` events keep working side by side; the JSON consumer
 * (`onJson` or `messages()`, one of the two, once) sees every message too.
 */
export class JsonWebSocketConnection<Request = unknown, In = unknown, Out = unknown> extends WebSocketConnection<Request> {
  readonly #codec: RouteMessages
  // Who consumes JSON here, made by onJson/messages(): most connections of a
  // route that does not use them never pay for the fields.
  #json: JsonConsumer | null = null
  // The route's failure handling, shared by its connections (installed by the plugin).
  #failurePolicy: ((error: unknown, conn: JsonWebSocketConnection<any, any, any>) => void) | null = null

  constructor (socket: Duplex, request: Request, options: ConnectionOptions, messages: RouteMessages) {
    super(socket, request, options)
    this.#codec = messages
  }

  /**
   * Handles every incoming JSON message: parsed safely, validated against
   * `schema.message`. Invalid ones never reach the handler; the route's
   * `onInvalidMessage` policy deals with them. A handler that throws or
   * rejects is handled like a failing route handler (`errorHandler`, or a
   * log entry and close 1011). Messages that arrived before the call are
   * held and delivered to it.
   */
  onJson (handler: JsonMessageHandler<In, this>): this
  /**
   * Handles each variant of a discriminated union with its own handler,
   * picked by the value of the `discriminator` property: no switch. A
   * message whose discriminator names no handler is an invalid message
   * (`FST_ERR_WS_UNKNOWN_MESSAGE_TYPE`).
   */
  onJson<K extends DiscriminatorOf<In>> (discriminator: K, handlers: VariantHandlers<In, K, this>): this
  onJson (handlerOrKey: JsonMessageHandler<In, this> | string, handlers?: object): this {
    if (typeof handlerOrKey === 'function') {
      this.#claim('onJson').handler = handlerOrKey as AnyHandler
    } else {
      if (typeof handlerOrKey !== 'string' || handlers === null || typeof handlers !== 'object') {
        throw new TypeError('onJson expects a handler function, or a discriminator name and an object of handlers')
      }
      for (const name of Object.keys(handlers)) {
        if (typeof (handlers as Record<string, unknown>)[name] !== 'function') throw new TypeError(`onJson: the handler for "${name}" is not a function`)
      }
      const consumer = this.#claim('onJson')
      consumer.discriminator = handlerOrKey
      consumer.handlers = handlers as Record<string, AnyHandler>
    }
    this.on('message', JsonWebSocketConnection.#listener)
    return this
  }

  /**
   * Iterates over valid incoming JSON messages, one at a time: reading
   * pauses while the loop body is busy. Invalid messages are handled by the
   * `onInvalidMessage` policy and skipped. Ends when the connection closes.
   */
  messages (): AsyncIterableIterator<In> {
    return this.#iterate(this.#claim('messages()'), this[Symbol.asyncIterator]())
  }

  /** Serializes `message` with the route's `schema.outgoing` (only declared fields are sent) and sends it as text. */
  sendJson (message: Out, callback?: SendCallback): boolean {
    const text = this.#codec.serialize(message)
    return callback === undefined ? this.send(text) : this.send(text, callback)
  }

  /** The text `sendJson` would send, e.g. to broadcast it with `app.websocket.broadcast`. */
  serializeJson (message: Out): string {
    return this.#codec.serialize(message)
  }

  /** @internal */
  [kSetFailureHandler] (failure: (error: unknown, conn: JsonWebSocketConnection<any, any, any>) => void): void {
    this.#failurePolicy = failure
  }

  protected override listenerFailed (error: unknown): void {
    this.#failure(error)
  }

  #failure (error: unknown): void {
    if (this.#failurePolicy !== null) {
      this.#failurePolicy(error, this)
      return
    }
    this.log?.error({ err: error }, 'websocket message handler failed')
    if (this.readyState === OPEN) this.close(CloseCode.InternalError, 'internal error')
  }

  #claim (what: string): JsonConsumer {
    if (this.#json !== null) {
      throw new Error(`${what}: this connection already has a JSON consumer (${this.#json.kind}); use one onJson or one messages() per connection`)
    }
    this.#json = { kind: what, handler: null, handlers: null, discriminator: null, stopped: false }
    return this.#json
  }

  // Shared by every connection: `this` is the emitting connection, so no closure per connection or message.
  static readonly #listener = function (this: JsonWebSocketConnection<unknown, unknown, unknown>, data: Buffer, isBinary: boolean): void {
    this.#receive(data, isBinary)
  }

  #receive (data: Buffer, isBinary: boolean): void {
    const consumer = this.#json!
    if (consumer.stopped) return
    const codec = this.#codec
    let message: unknown
    let handler = consumer.handler
    try {
      message = codec.decode(data, isBinary, consumer.discriminator)
      if (message === SKIP) {
        this.#settle(codec.rejectBinary(this, this.log))
        return
      }
      if (consumer.handlers !== null) handler = consumer.handlers[codec.tagOf(message, consumer.discriminator!, consumer.handlers)]
    } catch (error) {
      if (error instanceof InvalidMessageError) this.#settle(codec.reject(this, error, this.log))
      else this.#failure(error)
      return
    }
    let result: unknown
    try {
      result = handler!(message, this)
    } catch (error) {
      this.#failure(error)
      return
    }
    if (result !== undefined && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (error) => this.#failure(error))
    }
  }

  // After a policy ran: a policy function that threw fails the connection; a closed one reads no more.
  #settle (policyError: unknown): void {
    if (policyError !== undefined) this.#failure(policyError)
    if (this.readyState !== OPEN) this.#json!.stopped = true
  }

  async * #iterate (consumer: JsonConsumer, raw: AsyncIterableIterator<{ data: Buffer, isBinary: boolean }>): AsyncGenerator<In, undefined, undefined> {
    const codec = this.#codec
    for await (const { data, isBinary } of raw) {
      if (consumer.stopped) continue
      let message: unknown
      try {
        message = codec.decode(data, isBinary, null)
      } catch (error) {
        if (!(error instanceof InvalidMessageError)) throw error
        const policyError = codec.reject(this, error, this.log)
        if (policyError !== undefined) throw policyError
        if (this.readyState !== OPEN) consumer.stopped = true
        continue
      }
      if (message === SKIP) {
        const policyError = codec.rejectBinary(this, this.log)
        if (policyError !== undefined) throw policyError
        if (this.readyState !== OPEN) consumer.stopped = true
        continue
      }
      yield message as In
    }
    return undefined
  }
}
