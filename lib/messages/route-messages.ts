import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import { type CompilerCache, schemaErrorFormatter, splitDiscriminatedUnion, unwrapSchema } from './compile.js'
import { JsonDecoder, UNDECODED_BINARY, poisoningOptions } from './decode.js'
import { schemaBuildError, type SchemaErrorFormatter } from './errors.js'
import { MessagePolicies, checkMessageSettings, type PolicySettings } from './policies.js'
import { DiscriminatedUnionSerializer, WholeSchemaSerializer, checkSerializer, plainJson, type MessageSerializer } from './serialize.js'
import { DiscriminatedUnionValidator, WholeSchemaValidator, checkValidator, handlerTag, type MessageValidator } from './validate.js'

/**
 * The JSON messages of one WebSocket route: its `schema.message` and
 * `schema.outgoing` compiled into a validator and a serializer, its JSON
 * decoder and its policies. Shared by all the route's connections; holds
 * no per-connection state.
 *
 * When schemas compile: at `app.ready()` (`compile`), with the compilers
 * Fastify would use for the route; what that pass cannot reach compiles on
 * the route's first upgrade (`prepare`). Fail closed: a schema that did not
 * compile refuses every upgrade, so no connection ever runs unvalidated.
 */
export class RouteMessages {
  readonly policies: MessagePolicies
  readonly #instance: FastifyInstance
  readonly #routeOptions: RouteOptions
  readonly #decoder: JsonDecoder

  #compiled = false
  #validatorPending = false
  #serializerPending = false
  // A schema that failed to compile refuses every upgrade, not only the first.
  #compileError: unknown = undefined
  #messageSchema: unknown = undefined
  #outgoingSchema: unknown = undefined
  #formatter: SchemaErrorFormatter | undefined = undefined

  // Null without `schema.message` (or until it compiles: no connection exists then).
  #validator: MessageValidator | null = null
  #serializer: MessageSerializer = plainJson

  constructor (instance: FastifyInstance, routeOptions: RouteOptions, settings: PolicySettings & { highWaterMark: number }) {
    checkMessageSettings(settings, `WebSocket route ${String(routeOptions.method)} ${routeOptions.url}`)
    this.#instance = instance
    this.#routeOptions = routeOptions
    this.policies = new MessagePolicies(settings)
    this.#decoder = new JsonDecoder(poisoningOptions(instance), this.policies.decodesBinary)
  }

  // --- compiling

  /**
   * Compiles the route's message schemas with the route's compilers. Runs
   * once, when the app is ready; whatever needs the lazy path waits for
   * `prepare`.
   */
  compile (compilers: CompilerCache): void {
    if (this.#compiled) return
    this.#compiled = true
    try {
      this.#compileAtStartup(compilers)
    } catch (error) {
      this.#compileError = error
      throw error
    }
  }

  #compileAtStartup (compilers: CompilerCache): void {
    const { method, url } = this.#routeOptions
    const schema = this.#routeOptions.schema as { message?: unknown, outgoing?: unknown } | undefined
    this.#messageSchema = unwrapSchema(schema?.message)
    this.#outgoingSchema = unwrapSchema(schema?.outgoing)
    this.#formatter = schemaErrorFormatter(this.#instance, this.#routeOptions)

    // The HEAD twin Fastify adds to a GET route never upgrades (the handshake
    // is a GET): nothing to compile at startup, and the compilers see each schema once.
    if ([method].flat().every((m) => String(m).toUpperCase() === 'HEAD')) {
      this.#validatorPending = this.#messageSchema !== undefined
      this.#serializerPending = this.#outgoingSchema !== undefined
      return
    }

    if (this.#messageSchema !== undefined) {
      const compiler = compilers.validatorCompiler(this.#instance, this.#routeOptions)
      if (compiler === undefined) this.#validatorPending = true
      else this.#validator = this.#compileValidator((s) => compiler({ schema: s, method: String(method), url, httpPart: 'message' }))
    }
    if (this.#outgoingSchema !== undefined) {
      const compiler = compilers.serializerCompiler(this.#instance, this.#routeOptions)
      if (compiler === undefined) this.#serializerPending = true
      else this.#serializer = this.#compileSerializer((s) => compiler({ schema: s, method: String(method), url }))
    }
  }

  /**
   * Called for every upgrade before the connection exists. Compiles, on the
   * route's first connection, what the startup pass could not, through
   * Fastify's public per-route compile-and-cache API.
   */
  prepare (compilers: CompilerCache, request: FastifyRequest, reply: FastifyReply): void {
    if (!this.#compiled) this.compile(compilers)
    // Remembered rather than retried: the schemas cannot change after ready, and
    // recompiling on every upgrade would hand clients a cheap way to burn CPU.
    if (this.#compileError !== undefined) throw this.#compileError
    try {
      if (this.#validatorPending) {
        this.#validator = this.#compileValidator((s) => request.compileValidationSchema(s as any, 'message' as any))
        this.#validatorPending = false
      }
      if (this.#serializerPending) {
        this.#serializer = this.#compileSerializer((s) => reply.compileSerializationSchema(s as any))
        this.#serializerPending = false
      }
    } catch (error) {
      this.#compileError = error
      throw error
    }
  }

  #compileValidator (compile: (schema: unknown) => unknown): MessageValidator {
    try {
      const split = splitDiscriminatedUnion(this.#messageSchema)
      if (split === null) return new WholeSchemaValidator(checkValidator(compile(this.#messageSchema)), this.#formatter)
      const variants = split.branches.map((branch) => checkValidator(compile(branch)))
      // After the branches: Ajv refuses a branch's root $id once a union compiled first has registered it.
      const union = checkValidator(compile(this.#messageSchema))
      return new DiscriminatedUnionValidator(variants, union, split.keys, this.#formatter)
    } catch (error) {
      throw schemaBuildError('message', this.#routeOptions.method, this.#routeOptions.url, error)
    }
  }

  #compileSerializer (compile: (schema: unknown) => unknown): MessageSerializer {
    try {
      const split = splitDiscriminatedUnion(this.#outgoingSchema)
      if (split === null) return new WholeSchemaSerializer(checkSerializer(compile(this.#outgoingSchema)))
      const variants = split.branches.map((branch) => checkSerializer(compile(branch)))
      // Any discriminating property will do for picking a branch: the first.
      const [key, indexOf] = split.keys.entries().next().value!
      return new DiscriminatedUnionSerializer(variants, key, indexOf)
    } catch (error) {
      throw schemaBuildError('outgoing', this.#routeOptions.method, this.#routeOptions.url, error)
    }
  }

  // --- using what was compiled

  /**
   * One incoming message → the value to deliver. Throws an
   * `InvalidMessageError`; returns `UNDECODED_BINARY` for a binary message
   * the route does not decode (its `onBinaryMessage` policy decides).
   * `discriminator`: the property `onJson(discriminator, handlers)` picks
   * handlers by, or null.
   */
  decodeAndValidate (data: Buffer, isBinary: boolean, discriminator: string | null): unknown {
    const value = this.#decoder.decode(data, isBinary)
    if (value === UNDECODED_BINARY || this.#validator === null) return value
    return this.#validator.validate(value, discriminator)
  }

  /** The handler name of a valid message for `onJson(discriminator, handlers)`; throws an `InvalidMessageError`. */
  handlerTag (value: unknown, discriminator: string, handlers: object): string | number {
    return handlerTag(value, discriminator, handlers, this.#formatter)
  }

  /** Serializes an outgoing message with the route's serializer, or JSON.stringify without `schema.outgoing`. */
  serialize (message: unknown): string {
    return this.#serializer.serialize(message)
  }
}
