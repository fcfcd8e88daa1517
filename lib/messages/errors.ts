import { STATUS_CODES } from 'node:http'
import { CloseCode } from '../protocol/close-codes.js'

/** One failed check, as Ajv and Fastify report it. */
export interface MessageValidationIssue {
  /** JSON Pointer to the offending value inside the message, e.g. `/room`; '' for the message itself. */
  instancePath: string
  keyword: string
  message?: string
  params?: Record<string, unknown>
}

/** What a client receives for a rejected message under the default `onInvalidMessage: 'reply'` policy. */
export interface InvalidMessageBody {
  statusCode: number
  code: string
  error: string
  message: string
  validation?: MessageValidationIssue[]
}

/** Codes of `InvalidMessageError`. */
export const InvalidMessageCode = {
  /** The text is not JSON, or it carries a `__proto__` / `constructor.prototype` key. */
  InvalidJson: 'FST_ERR_WS_INVALID_JSON',
  /** The message does not match `schema.message`. */
  Validation: 'FST_ERR_VALIDATION',
  /** The discriminator names no variant of the schema, or no handler was given for it. */
  UnknownMessageType: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE',
  /** A binary message on a JSON route (with `onBinaryMessage: 'error'`). */
  BinaryMessage: 'FST_ERR_WS_BINARY_MESSAGE'
} as const

export type InvalidMessageCode = typeof InvalidMessageCode[keyof typeof InvalidMessageCode]

// Short, fixed close reasons: a close frame holds at most 123 bytes of reason.
const CLOSE_REASONS: Record<InvalidMessageCode, string> = {
  FST_ERR_WS_INVALID_JSON: 'invalid JSON',
  FST_ERR_VALIDATION: 'invalid message',
  FST_ERR_WS_UNKNOWN_MESSAGE_TYPE: 'unknown message type',
  FST_ERR_WS_BINARY_MESSAGE: 'binary messages are not accepted'
}

/**
 * A message that a JSON route refused. Handed to the `onInvalidMessage`
 * policy; `toJSON()` gives what the default policy sends to the client.
 */
export class InvalidMessageError extends Error {
  readonly code: InvalidMessageCode
  /** The HTTP status the error maps to: 400, or 415 for a binary message. */
  readonly statusCode: number
  /** The close code the `'close'` policy uses: 1007 (invalid JSON), 1008 (schema), 1003 (binary). */
  readonly closeCode: number
  /** The failed checks, for schema violations and unknown message types. */
  readonly validation: MessageValidationIssue[] | undefined
  /** Always 'message', as `validationContext` is 'body' for Fastify's request bodies. */
  readonly validationContext = 'message'

  constructor (code: InvalidMessageCode, message: string, validation?: MessageValidationIssue[], cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'InvalidMessageError'
    this.code = code
    this.statusCode = code === InvalidMessageCode.BinaryMessage ? 415 : 400
    this.closeCode = code === InvalidMessageCode.InvalidJson
      ? CloseCode.InvalidPayload
      : code === InvalidMessageCode.BinaryMessage ? CloseCode.UnsupportedData : CloseCode.PolicyViolation
    this.validation = validation
  }

  /** A close reason short enough for a close frame. */
  get closeReason (): string {
    return CLOSE_REASONS[this.code]
  }

  /** Fastify's error shape, plus `validation` (where the message failed). */
  toJSON (): InvalidMessageBody {
    const body: InvalidMessageBody = {
      statusCode: this.statusCode,
      code: this.code,
      error: STATUS_CODES[this.statusCode] ?? 'Error',
      message: this.message
    }
    if (this.validation !== undefined) {
      body.validation = this.validation.map((issue) => {
        const out: MessageValidationIssue = { instancePath: issue.instancePath ?? '', keyword: issue.keyword }
        if (issue.message !== undefined) out.message = issue.message
        if (issue.params !== undefined) out.params = issue.params
        return out
      })
    }
    return body
  }
}

/**
 * Builds an error without capturing a stack trace: a client can send
 * thousands of invalid messages, and the trace would say nothing useful.
 */
export function createInvalidMessageError (code: InvalidMessageCode, message: string, validation?: MessageValidationIssue[], cause?: unknown): InvalidMessageError {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new InvalidMessageError(code, message, validation, cause)
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** Fastify's `schemaErrorFormatter` (route or instance), which words schema violations when the app sets one. */
export type SchemaErrorFormatter = (errors: any[], dataVar: any) => Error

/**
 * A schema violation. `errors` is what the validator reported: Ajv's
 * issue list, or an `Error` from a validator that returns `{ error }`
 * (TypeBox, Zod adapters…), whose own `validation` list is kept if it has one.
 */
export function schemaViolation (errors: unknown, formatter: SchemaErrorFormatter | undefined): InvalidMessageError {
  if (errors instanceof Error) {
    const validation = Array.isArray((errors as any).validation) ? (errors as any).validation : undefined
    return createInvalidMessageError(InvalidMessageCode.Validation, errors.message, validation, errors)
  }
  const issues = Array.isArray(errors) ? errors as MessageValidationIssue[] : []
  let message: string
  if (formatter !== undefined) {
    message = formatter(issues, 'message').message
  } else {
    message = issues.length > 0 ? formatValidationErrors(issues, 'message') : 'message is invalid'
  }
  return createInvalidMessageError(InvalidMessageCode.Validation, message, issues)
}

/** A discriminated message that is not an object, worded as Ajv words `type: 'object'`. */
export function notAnObject (formatter: SchemaErrorFormatter | undefined): InvalidMessageError {
  return schemaViolation([{ instancePath: '', keyword: 'type', params: { type: 'object' }, message: 'must be object' }], formatter)
}

/** A discriminated message without its tag, worded as Ajv words `required`. */
export function missingTag (key: string, formatter: SchemaErrorFormatter | undefined): InvalidMessageError {
  return schemaViolation([{ instancePath: '', keyword: 'required', params: { missingProperty: key }, message: `must have required property '${key}'` }], formatter)
}

/** A tag that names no variant of the schema, or no handler given to `onJson`. */
export function unknownMessageType (key: string, tag: unknown, allowed: unknown[]): InvalidMessageError {
  const list = allowed.map((v) => JSON.stringify(v)).join(', ')
  const shown = tag === undefined ? 'missing' : JSON.stringify(tag)
  return createInvalidMessageError(
    InvalidMessageCode.UnknownMessageType,
    `message/${key} must be one of the known message types (${list}), got ${shown}`,
    [{ instancePath: '/' + key, keyword: 'discriminator', params: { tag: key, tagValue: tag, allowedValues: allowed }, message: `must be one of ${list}` }]
  )
}

/**
 * A `schema.message` / `schema.outgoing` that did not compile, with the
 * code and wording Fastify uses for a route's body or response schema.
 */
export function schemaBuildError (part: 'message' | 'outgoing', method: unknown, url: unknown, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error)
  const err = new Error(`Failed building the ${part} schema for ${String(method)}: ${String(url)}, due to error ${reason}`, { cause: error })
  ;(err as any).code = part === 'message' ? 'FST_ERR_SCH_VALIDATION_BUILD' : 'FST_ERR_SCH_SERIALIZATION_BUILD'
  return err
}

/** Fastify's default text for validation errors: `message/room must be string`. */
export function formatValidationErrors (issues: readonly MessageValidationIssue[], dataVar: string): string {
  let text = ''
  for (let i = 0; i < issues.length; i++) {
    const issue = issues[i]
    if (i > 0) text += ', '
    text += dataVar + (issue.instancePath ?? '') + ' ' + (issue.message ?? `failed ${issue.keyword}`)
  }
  return text
}
