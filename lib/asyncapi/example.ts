import { evaluatePointer } from './schemas.js'

/**
 * An example value for a schema of the document, for the HTML page when a
 * message declares none (JSON Schema `examples`). It follows the schema's
 * own hints first — `const`, `examples`, `default`, `enum` — and otherwise
 * makes up a value of the right type: enough for a reader to see the shape
 * of a message, not a value the validator is guaranteed to accept
 * (patterns, for one, are not honoured).
 */

const MAX_DEPTH = 8

const FORMATS: Readonly<Record<string, string>> = {
  'date-time': '2024-01-01T12:00:00.000Z',
  date: '2024-01-01',
  time: '12:00:00Z',
  email: 'user@example.com',
  uri: 'https://example.com/',
  'uri-reference': '/path',
  uuid: '123e4567-e89b-12d3-a456-426614174000',
  hostname: 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1'
}

/** An example for `schema`; `$ref`s are pointers into `document`. */
export function exampleOf (schema: unknown, document: unknown): unknown {
  return example(schema, document, 0)
}

function example (schema: unknown, document: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH || schema === null || typeof schema !== 'object') return null
  const s = schema as Record<string, unknown>
  if (typeof s.$ref === 'string') {
    return s.$ref.startsWith('#') ? example(evaluatePointer(document, s.$ref.slice(1)), document, depth + 1) : null
  }
  if (Object.hasOwn(s, 'const')) return s.const
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0]
  if (Object.hasOwn(s, 'default')) return s.default
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0]
  for (const keyword of ['oneOf', 'anyOf'] as const) {
    const branches = s[keyword]
    if (Array.isArray(branches) && branches.length > 0) return example(branches[0], document, depth + 1)
  }
  if (Array.isArray(s.allOf)) {
    // Each part of an object adds its properties.
    const parts = s.allOf.map((part) => example(part, document, depth + 1))
    return parts.every(isPlainObject) ? Object.assign({}, ...parts) : parts[0] ?? null
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') ?? 'null' : s.type ?? (s.properties !== undefined ? 'object' : undefined)
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const properties = s.properties
      if (isPlainObject(properties)) {
        for (const [name, property] of Object.entries(properties)) out[name] = example(property, document, depth + 1)
      }
      return out
    }
    case 'array': {
      const items = Array.isArray(s.items) ? s.items : s.items === undefined ? [] : [s.items]
      return items.map((item) => example(item, document, depth + 1))
    }
    case 'string': {
      if (typeof s.format === 'string' && Object.hasOwn(FORMATS, s.format)) return FORMATS[s.format]
      const min = typeof s.minLength === 'number' ? s.minLength : 0
      const max = typeof s.maxLength === 'number' ? s.maxLength : Infinity
      const text = 'string'.padEnd(min, 'x')
      return text.slice(0, Math.max(max, min))
    }
    case 'integer':
    case 'number': {
      if (typeof s.minimum === 'number') return type === 'integer' ? Math.ceil(s.minimum) : s.minimum
      if (typeof s.exclusiveMinimum === 'number') return type === 'integer' ? Math.floor(s.exclusiveMinimum) + 1 : s.exclusiveMinimum + 1
      if (typeof s.maximum === 'number' && s.maximum < 0) return s.maximum
      return 0
    }
    case 'boolean':
      return true
    default:
      return null
  }
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
