import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import sjson from 'secure-json-parse'
import { CloseCode } from '../protocol/close-codes.js'
import { type CompilerCache, schemaErrorFormatter, splitDiscriminatedUnion, unwrapSchema } from './compile.js'
import { InvalidMessageCode, createInvalidMessageError, formatValidationErrors, type InvalidMessageError, type MessageValidationIssue } from './errors.js'
import type { BinaryMessagePolicy, InvalidMessagePolicy, JsonMessageSettings } from './types.js'

type Validator = ((data: unknown, dataCxt?: object) => unknown) & { errors?: unknown, schemaEnv?: unknown, $async?: unknown }
type Serializer = (data: unknown) => string
type PoisoningAction = 'error' | 'remove' | 'ignore'

/** The part of a connection the codec acts on. */
export interface MessageTarget {
  readonly readyState: number
  readonly bufferedAmount: number
  send (data: string): boolean
  close (code?: number, reason?: string): void
}

/** The logger of the upgrade request. */
interface Log {
  debug (obj: unknown, msg?: string): void
  info (obj: unknown, msg?: string): void
}

/** Returned by `decode` for a binary message the policy drops or closes on. */
export const SKIP: unique symbol = Symbol('fastify-rfc6455.skip')

// What `check` returns for a value the validator refused (its errors wait in `lastErrors`).
const INVALID: unique symbol = Symbol('fastify-rfc6455.invalid')

const OPEN = 1
const INVALID_POLICIES = new Set(['reply', 'close', 'ignore'])
const BINARY_POLICIES = new Set(['close', 'error', 'ignore', 'json'])
const POISONING_ACTIONS = new Set(['error', 'remove', 'ignore'])
const utf8 = new TextDecoder('utf-8', { fatal: true })

function compileFailure (what: string, method: unknown, url: unknown, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error)
  const err = new Error(`Failed building the ${what} schema for ${String(method)}: ${String(url)}, due to error ${reason}`, { cause: error })
  ;(err as any).code = what === 'message' ? 'FST_ERR_SCH_VALIDATION_BUILD' : 'FST_ERR_SCH_SERIALIZATION_BUILD'
  return err
}

/** Checks the policy settings where they are given, so mistakes fail at startup. */
export function checkMessageSettings (settings: JsonMessageSettings, where: string): void {
  const invalid = settings.onInvalidMessage
  if (invalid !== undefined && typeof invalid !== 'function' && !INVALID_POLICIES.has(invalid)) {
    throw new TypeError(`${where}: onInvalidMessage must be 'reply', 'close', 'ignore' or a function, got ${JSON.stringify(invalid)}`)
  }
  const binary = settings.onBinaryMessage
  if (binary !== undefined && !BINARY_POLICIES.has(binary)) {
    throw new TypeError(`${where}: onBinaryMessage must be 'close', 'error', 'ignore' or 'json', got ${JSON.stringify(binary)}`)
  }
}

/**
 * The compiled JSON-message machinery of one WebSocket route: parser
 * options, validators and serializers (compiled once, when the app is
 * ready), and the invalid/binary message policies. Shared by all the
 * route's connections; holds no per-connection state.
 */
export class RouteMessages {
  readonly onInvalidMessage: InvalidMessagePolicy
  readonly onBinaryMessage: BinaryMessagePolicy
  private readonly instance: FastifyInstance
  private readonly routeOptions: RouteOptions
  private readonly highWaterMark: number
  private readonly parseOptions: { protoAction: PoisoningAction, constructorAction: PoisoningAction }

  private compiled = false
  private validatorPending = false
  private serializerPending = false
  // A schema that failed to compile refuses every upgrade, not only the first.
  private compileError: unknown = undefined
  private messageSchema: unknown = undefined
  private outgoingSchema: unknown = undefined

  // Incoming: one validator for the whole schema, or one per branch of a discriminated union.
  private validate: Validator | null = null
  private variantValidators: Validator[] | null = null
  private variantKeys: Map<string, Map<unknown, number>> | null = null
  private primaryKey: string | null = null
  // For a split union, a tag that names no variant may still pass the whole union once coerced.
  private unionValidator: Validator | null = null
  private lastErrors: unknown = undefined
  private formatter: ((errors: any[], dataVar: any) => Error) | undefined = undefined

  // Outgoing, likewise.
  private serializeWhole: Serializer | null = null
  private variantSerializers: Serializer[] | null = null
  private outgoingKey: string | null = null
  private outgoingMap: Map<unknown, number> | null = null

  // Ajv can replace the root value (type coercion) only through its parent: one holder, reused.
  private readonly holder: { message: unknown } = { message: undefined }
  private readonly holderContext: object

  constructor (instance: FastifyInstance, routeOptions: RouteOptions, settings: JsonMessageSettings & { highWaterMark: number }) {
    checkMessageSettings(settings, `WebSocket route ${String(routeOptions.method)} ${routeOptions.url}`)
    this.instance = instance
    this.routeOptions = routeOptions
    this.onInvalidMessage = settings.onInvalidMessage ?? 'reply'
    this.onBinaryMessage = settings.onBinaryMessage ?? 'close'
    this.highWaterMark = settings.highWaterMark
    const config = instance.initialConfig as { onProtoPoisoning?: string, onConstructorPoisoning?: string } | undefined
    this.parseOptions = {
      protoAction: poisoningAction(config?.onProtoPoisoning),
      constructorAction: poisoningAction(config?.onConstructorPoisoning)
    }
    this.holderContext = { parentData: this.holder, parentDataProperty: 'message' } // as Fastify passes for request parts
  }

  /** Whether the route declares `schema.message`. */
  get hasMessageSchema (): boolean {
    return this.messageSchema !== undefined
  }

  /**
   * Compiles the route's message schemas with the route's compilers. Runs
   * once, when the app is ready; whatever needs the lazy path waits for
   * `prepare`.
   */
  compile (compilers: CompilerCache): void {
    if (this.compiled) return
    this.compiled = true
    try {
      this.compileNow(compilers)
    } catch (error) {
      this.compileError = error
      throw error
    }
  }

  private compileNow (compilers: CompilerCache): void {
    const { method, url } = this.routeOptions
    const schema = this.routeOptions.schema as { message?: unknown, outgoing?: unknown } | undefined
    this.messageSchema = unwrapSchema(schema?.message)
    this.outgoingSchema = unwrapSchema(schema?.outgoing)
    this.formatter = schemaErrorFormatter(this.instance, this.routeOptions)

    // The HEAD twin Fastify adds to a GET route never upgrades (the handshake
    // is a GET): nothing to compile at startup, and the compilers see each schema once.
    if ([method].flat().every((m) => String(m).toUpperCase() === 'HEAD')) {
      this.validatorPending = this.messageSchema !== undefined
      this.serializerPending = this.outgoingSchema !== undefined
      return
    }

    if (this.messageSchema !== undefined) {
      const compiler = compilers.validatorCompiler(this.instance, this.routeOptions)
      if (compiler === undefined) this.validatorPending = true
      else this.compileIncoming((s) => compiler({ schema: s, method: String(method), url, httpPart: 'message' }))
    }
    if (this.outgoingSchema !== undefined) {
      const compiler = compilers.serializerCompiler(this.instance, this.routeOptions)
      if (compiler === undefined) this.serializerPending = true
      else this.compileOutgoing((s) => compiler({ schema: s, method: String(method), url }))
    }
  }

  /**
   * Called for every upgrade before the connection exists. Compiles, on the
   * route's first connection, what the startup pass could not, through
   * Fastify's public per-route compile-and-cache API.
   */
  prepare (compilers: CompilerCache, request: FastifyRequest, reply: FastifyReply): void {
    if (!this.compiled) this.compile(compilers)
    // Remembered rather than retried: the schemas cannot change after ready, and
    // recompiling on every upgrade would hand clients a cheap way to burn CPU.
    if (this.compileError !== undefined) throw this.compileError
    try {
      if (this.validatorPending) {
        this.compileIncoming((s) => request.compileValidationSchema(s as any, 'message' as any) as Validator)
        this.validatorPending = false
      }
      if (this.serializerPending) {
        this.compileOutgoing((s) => reply.compileSerializationSchema(s as any))
        this.serializerPending = false
      }
    } catch (error) {
      this.compileError = error
      throw error
    }
  }

  private compileIncoming (compile: (schema: unknown) => unknown): void {
    const { method, url } = this.routeOptions
    try {
      const split = splitDiscriminatedUnion(this.messageSchema)
      if (split === null) {
        this.validate = checkValidator(compile(this.messageSchema))
        return
      }
      const variants = split.branches.map((branch) => checkValidator(compile(branch)))
      // After the branches: Ajv refuses a branch's root $id once a union compiled first has registered it.
      const union = checkValidator(compile(this.messageSchema))
      this.variantValidators = variants
      this.unionValidator = union
      this.variantKeys = split.keys
      this.primaryKey = split.keys.keys().next().value!
    } catch (error) {
      throw compileFailure('message', method, url, error)
    }
  }

  private compileOutgoing (compile: (schema: unknown) => unknown): void {
    const { method, url } = this.routeOptions
    try {
      const split = splitDiscriminatedUnion(this.outgoingSchema)
      if (split === null) {
        this.serializeWhole = checkSerializer(compile(this.outgoingSchema))
        return
      }
      const serializers = split.branches.map((branch) => checkSerializer(compile(branch)))
      const [key, map] = split.keys.entries().next().value!
      this.variantSerializers = serializers
      this.outgoingKey = key
      this.outgoingMap = map
    } catch (error) {
      throw compileFailure('outgoing', method, url, error)
    }
  }

  // --- incoming

  /**
   * Turns one message into a validated value. Throws an
   * `InvalidMessageError`; returns `SKIP` for a binary message that the
   * binary policy does not decode. With `discriminator`, the message must
   * be an object whose `discriminator` property names a variant.
   */
  decode (data: Buffer, isBinary: boolean, discriminator: string | null): unknown {
    let text: string
    if (isBinary) {
      if (this.onBinaryMessage !== 'json') return SKIP
      try {
        text = utf8.decode(data)
      } catch (error) {
        throw createInvalidMessageError(InvalidMessageCode.InvalidJson, 'the binary message is not valid UTF-8', undefined, error)
      }
    } else {
      text = data.toString()
    }

    let value: unknown
    try {
      // JSON.parse, then a key scan only if the text mentions __proto__ or constructor.
      value = sjson.parse(text, undefined, this.parseOptions)
    } catch (error) {
      throw createInvalidMessageError(InvalidMessageCode.InvalidJson, (error as Error).message, undefined, error)
    }

    if (this.variantValidators !== null) {
      const key = discriminator !== null && this.variantKeys!.has(discriminator) ? discriminator : this.primaryKey!
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw this.notAnObject()
      const index = this.variantKeys!.get(key)!.get((value as Record<string, unknown>)[key])
      if (index !== undefined) return this.run(this.variantValidators[index], value)
      return this.decodeUntagged(value, key)
    }
    if (this.validate !== null) value = this.run(this.validate, value)
    return value
  }

  /**
   * A message whose tag names no variant as sent. Splitting matched the tag
   * strictly, but the validator Fastify would use on the whole union may
   * coerce it (`"1"` for `const: 1` under the default Ajv options), so that
   * validator decides whether the message is valid.
   */
  private decodeUntagged (value: object, key: string): unknown {
    const map = this.variantKeys!.get(key)!
    const tag = (value as Record<string, unknown>)[key]
    const checked = this.check(this.unionValidator!, value)
    this.lastErrors = undefined // one error per branch: naming the bad tag says more
    if (checked !== INVALID && checked !== null && typeof checked === 'object' && map.has((checked as Record<string, unknown>)[key])) {
      return checked
    }
    if (tag === undefined) {
      throw this.validationError([{ instancePath: '', keyword: 'required', params: { missingProperty: key }, message: `must have required property '${key}'` }])
    }
    throw unknownType(key, tag, [...map.keys()])
  }

  /** The tag of a message that passed validation, checked against the handlers. */
  tagOf (value: unknown, discriminator: string, handlers: object): string | number {
    const tag = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[discriminator] : undefined
    if ((typeof tag === 'string' || typeof tag === 'number') && Object.hasOwn(handlers, tag)) return tag
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw this.notAnObject()
    throw unknownType(discriminator, tag, Object.keys(handlers))
  }

  private notAnObject (): InvalidMessageError {
    return this.validationError([{ instancePath: '', keyword: 'type', params: { type: 'object' }, message: 'must be object' }])
  }

  private run (validate: Validator, value: unknown): unknown {
    const checked = this.check(validate, value)
    if (checked !== INVALID) return checked
    const errors = this.lastErrors
    this.lastErrors = undefined
    throw this.validationError(errors)
  }

  /** The validated (possibly coerced) value, or INVALID with the errors in `lastErrors`. */
  private check (validate: Validator, value: unknown): unknown {
    let result: unknown
    if (validate.schemaEnv !== undefined) {
      // An Ajv function: let it coerce the root value through the holder.
      this.holder.message = value
      result = validate(value, this.holderContext)
      value = this.holder.message
      this.holder.message = undefined
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
        throw new TypeError('asynchronous validators are not supported for WebSocket messages')
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

  private validationError (errors: unknown): InvalidMessageError {
    if (errors instanceof Error) {
      const validation = Array.isArray((errors as any).validation) ? (errors as any).validation : undefined
      return createInvalidMessageError(InvalidMessageCode.Validation, errors.message, validation, errors)
    }
    const issues = Array.isArray(errors) ? errors as MessageValidationIssue[] : []
    let message: string
    if (this.formatter !== undefined) {
      message = this.formatter(issues, 'message').message
    } else {
      message = issues.length > 0 ? formatValidationErrors(issues, 'message') : 'message is invalid'
    }
    return createInvalidMessageError(InvalidMessageCode.Validation, message, issues)
  }

  // --- policies

  /** Applies the invalid-message policy. Returns the error if a policy function threw it. */
  reject (conn: MessageTarget & { request: unknown }, error: InvalidMessageError, log: Log | undefined): unknown {
    const policy = this.onInvalidMessage
    if (policy === 'reply') {
      log?.debug({ err: error }, 'websocket message rejected')
      // A client that floods invalid messages without reading the answers gets no more of them.
      if (conn.readyState === OPEN && conn.bufferedAmount < this.highWaterMark) conn.send(JSON.stringify(error))
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
      policy(error, conn as any)
    } catch (policyError) {
      return policyError
    }
    return undefined
  }

  /** Applies the binary-message policy to a message `decode` skipped. */
  rejectBinary (conn: MessageTarget & { request: unknown }, log: Log | undefined): unknown {
    const policy = this.onBinaryMessage
    if (policy === 'ignore') {
      log?.debug({}, 'websocket binary message ignored by the JSON consumer')
      return undefined
    }
    if (policy === 'error') {
      return this.reject(conn, createInvalidMessageError(InvalidMessageCode.BinaryMessage, 'binary messages are not accepted on this route'), log)
    }
    log?.info({ closeCode: CloseCode.UnsupportedData }, 'websocket binary message on a JSON route; closing the connection')
    if (conn.readyState === OPEN) conn.close(CloseCode.UnsupportedData, 'binary messages are not accepted')
    return undefined
  }

  // --- outgoing

  /** Serializes an outgoing message with the route's serializer, or JSON.stringify without `schema.outgoing`. */
  serialize (message: unknown): string {
    let text: unknown
    if (this.variantSerializers !== null) {
      const tag = message !== null && typeof message === 'object' ? (message as Record<string, unknown>)[this.outgoingKey!] : undefined
      const index = this.outgoingMap!.get(tag)
      if (index === undefined) {
        throw new TypeError(`the outgoing message's "${this.outgoingKey!}" (${JSON.stringify(tag)}) matches no variant of schema.outgoing`)
      }
      text = this.variantSerializers[index](message)
    } else if (this.serializeWhole !== null) {
      text = this.serializeWhole(message)
    } else {
      text = JSON.stringify(message)
    }
    if (typeof text !== 'string') throw new TypeError('the outgoing message cannot be serialized to JSON')
    return text
  }
}

function unknownType (key: string, tag: unknown, allowed: unknown[]): InvalidMessageError {
  const list = allowed.map((v) => JSON.stringify(v)).join(', ')
  const shown = tag === undefined ? 'missing' : JSON.stringify(tag)
  return createInvalidMessageError(
    InvalidMessageCode.UnknownMessageType,
    `message/${key} must be one of the known message types (${list}), got ${shown}`,
    [{ instancePath: '/' + key, keyword: 'discriminator', params: { tag: key, tagValue: tag, allowedValues: allowed }, message: `must be one of ${list}` }]
  )
}

function checkValidator (fn: unknown): Validator {
  if (typeof fn !== 'function') throw new TypeError('the validator compiler did not return a function')
  if ((fn as Validator).$async === true) throw new TypeError('asynchronous ($async) schemas are not supported for WebSocket messages')
  return fn as Validator
}

function checkSerializer (fn: unknown): Serializer {
  if (typeof fn !== 'function') throw new TypeError('the serializer compiler did not return a function')
  return fn as Serializer
}

function poisoningAction (value: string | undefined): PoisoningAction {
  return value !== undefined && POISONING_ACTIONS.has(value) ? value as PoisoningAction : 'error'
}
