import type { Duplex } from 'node:stream'
import { WebSocketConnection, type ConnectionOptions, type SendCallback } from '../connection/connection.js'
import { CloseCode } from '../protocol/close-codes.js'
import { invalidArgument, withCode } from '../protocol/errors.js'
import { UNDECODED_BINARY } from './decode.js'
import { InvalidMessageError } from './errors.js'
import type { RouteMessages } from './route-messages.js'
import type { DiscriminatorOf, JsonMessageHandler, VariantHandlers } from './types.js'

type AnyHandler = (message: unknown, conn: unknown) => unknown

/**
 * Who consumes JSON on a connection (made by `onJson` or `messages()`).
 * The two differ only in how a message reaches the app (a handler call or
 * the loop's next value) and where a failure goes; everything before that
 * is `#accept`, shared.
 */
interface JsonConsumer {
  /** 'onJson' or 'messages()', for the error when a second one is attached. */
  kind: string
  /**
   * Who receives the message `#accept` just returned: the `onJson` handler,
   * or, with per-variant handlers, the one `#accept` picked for it.
   */
  handler: AnyHandler | null
  /** `onJson(discriminator, handlers)`: the handlers by tag, and the tag's property. */
  handlers: Record<string, AnyHandler> | null
  discriminator: string | null
  /**
   * `messages()`: a failure (a policy function that threw, a validator that
   * broke) is thrown into the `for await` loop that reads the messages.
   * `onJson`: it goes to the route's failure handling (`errorHandler`, or
   * a log entry and close 1011), as a failing handler's does.
   */
  throwsFailures: boolean
  /** A policy closed the connection: nothing more is read. */
  stopped: boolean
}

// What `#accept` returns when the message is not for the app (refused, or read after `stopped`).
const NO_MESSAGE: unique symbol = Symbol('fastify-rfc6455.noMessage')

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
  readonly #route: RouteMessages
  // Who consumes JSON here, made by onJson/messages(): most connections of a
  // route that does not use them never pay for the fields.
  #json: JsonConsumer | null = null
  // The route's failure handling, shared by its connections (installed by the plugin).
  #failurePolicy: ((error: unknown, conn: JsonWebSocketConnection<any, any, any>) => void) | null = null

  constructor (socket: Duplex, request: Request, options: ConnectionOptions, messages: RouteMessages) {
    super(socket, request, options)
    this.#route = messages
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
        throw invalidArgument(new TypeError('onJson expects a handler function, or a discriminator name and an object of handlers'))
      }
      for (const name of Object.keys(handlers)) {
        if (typeof (handlers as Record<string, unknown>)[name] !== 'function') throw invalidArgument(new TypeError(`onJson: the handler for "${name}" is not a function`))
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
    const text = this.#route.serialize(message)
    return callback === undefined ? this.send(text) : this.send(text, callback)
  }

  /**
   * Serializes `message` once with the route's `schema.outgoing`, as
   * `sendJson` does, and publishes the text to every subscriber of `topic`
   * except this connection (`publish`). Returns how many connections it was
   * queued on.
   */
  publishJson (topic: string, message: Out): number {
    return this.publish(topic, this.#route.serialize(message))
  }

  /** The text `sendJson` would send, e.g. to broadcast it with `app.websocket.broadcast`. */
  serializeJson (message: Out): string {
    return this.#route.serialize(message)
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

  #claim (what: 'onJson' | 'messages()'): JsonConsumer {
    if (this.#json !== null) {
      throw withCode(new Error(`${what}: this connection already has a JSON consumer (${this.#json.kind}); use one onJson or one messages() per connection`), 'FST_ERR_WS_JSON_CONSUMER')
    }
    this.#json = { kind: what, handler: null, handlers: null, discriminator: null, throwsFailures: what === 'messages()', stopped: false }
    return this.#json
  }

  // Shared by every connection: `this` is the emitting connection, so no closure per connection or message.
  static readonly #listener = function (this: JsonWebSocketConnection<unknown, unknown, unknown>, data: Buffer, isBinary: boolean): void {
    this.#receive(data, isBinary)
  }

  // The onJson side: `#accept`, then the handler; what it returns or throws is the handler's failure.
  #receive (data: Buffer, isBinary: boolean): void {
    const consumer = this.#json!
    const message = this.#accept(consumer, data, isBinary)
    if (message === NO_MESSAGE) return
    let result: unknown
    try {
      result = consumer.handler!(message, this)
    } catch (error) {
      this.#failure(error)
      return
    }
    if (result !== undefined && result !== null && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (error) => this.#failure(error))
    }
  }

  // The messages() side: `#accept`, then the loop body; reading pauses while it is busy (the raw iterator's backpressure).
  async * #iterate (consumer: JsonConsumer, raw: AsyncIterableIterator<{ data: Buffer, isBinary: boolean }>): AsyncGenerator<In, undefined, undefined> {
    for await (const { data, isBinary } of raw) {
      const message = this.#accept(consumer, data, isBinary)
      if (message !== NO_MESSAGE) yield message as In
    }
    return undefined
  }

  /**
   * The one consume path of `onJson` and `messages()`: decodes and validates
   * a message, picks its variant handler, and applies the route's policy to
   * one that cannot be delivered. Returns the message, or NO_MESSAGE.
   */
  #accept (consumer: JsonConsumer, data: Buffer, isBinary: boolean): unknown {
    if (consumer.stopped) return NO_MESSAGE
    const route = this.#route
    let message: unknown
    let invalid: InvalidMessageError | null = null
    try {
      message = route.decodeAndValidate(data, isBinary, consumer.discriminator)
      if (consumer.handlers !== null && message !== UNDECODED_BINARY) {
        consumer.handler = consumer.handlers[route.handlerTag(message, consumer.discriminator!, consumer.handlers)]
      }
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) {
        this.#reportFailure(consumer, error)
        return NO_MESSAGE
      }
      invalid = error
    }
    if (invalid === null && message !== UNDECODED_BINARY) return message
    // Outside the try: a policy function may rethrow the InvalidMessageError it was given.
    const policyError = invalid !== null
      ? route.policies.rejectInvalid(this, invalid, this.log)
      : route.policies.rejectBinary(this, this.log)
    if (policyError !== undefined) this.#reportFailure(consumer, policyError)
    if (this.readyState !== OPEN) consumer.stopped = true
    return NO_MESSAGE
  }

  // Where a failure goes depends on the consumer (see `throwsFailures`).
  #reportFailure (consumer: JsonConsumer, error: unknown): void {
    if (consumer.throwsFailures) throw error
    this.#failure(error)
  }
}
