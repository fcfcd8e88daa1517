/**
 * A YAML emitter for JSON-compatible values (what an AsyncAPI document is):
 * objects, arrays, strings, finite numbers, booleans and null, in block
 * style. Written here rather than taken from a package so that the plugin's
 * runtime dependencies do not grow for one endpoint.
 *
 * It aims to be read back as the same value by any YAML parser, 1.1 or 1.2
 * (js-yaml, which @asyncapi/parser uses, still resolves some 1.1 forms), so
 * it is conservative: a string is written plain only when it cannot be
 * mistaken for anything else; otherwise double-quoted, or as a literal block
 * when it spans lines. `undefined` and functions are left out, as
 * `JSON.stringify` does.
 */

const INDENT = '  '

/** The YAML text of `value`, ending with a newline. */
export function toYaml (value: unknown): string {
  const json = toJsonValue(value)
  if (isCollection(json) && !isEmpty(json)) return block(json, '').join('\n') + '\n'
  return scalar(json, INDENT) + '\n'
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** The value as JSON would keep it: toJSON() called, undefined and functions dropped, non-finite numbers → null. */
function toJsonValue (value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value) ?? 'null') as JsonValue
}

function isCollection (value: JsonValue): value is JsonValue[] | { [key: string]: JsonValue } {
  return value !== null && typeof value === 'object'
}

function isEmpty (value: JsonValue[] | { [key: string]: JsonValue }): boolean {
  return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0
}

/** The lines of a non-empty mapping or sequence at `indent`. */
function block (value: JsonValue[] | { [key: string]: JsonValue }, indent: string): string[] {
  const lines: string[] = []
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isCollection(item) && !isEmpty(item)) {
        // The item's first line goes after the dash; the rest line up under it.
        const inner = block(item, indent + INDENT)
        lines.push(`${indent}- ${inner[0].slice(indent.length + INDENT.length)}`, ...inner.slice(1))
      } else {
        lines.push(`${indent}- ${scalar(item, indent + INDENT)}`)
      }
    }
    return lines
  }
  for (const [key, item] of Object.entries(value)) {
    const name = key === '' || !isPlainSafe(key) ? quote(key) : key
    if (isCollection(item) && !isEmpty(item)) {
      lines.push(`${indent}${name}:`, ...block(item, indent + INDENT))
    } else {
      lines.push(`${indent}${name}: ${scalar(item, indent + INDENT)}`)
    }
  }
  return lines
}

/** A scalar (or an empty collection, in flow style); a literal block's lines are indented by `indent`. */
function scalar (value: JsonValue, indent: string): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return '[]'
  if (typeof value === 'object') return '{}'
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  // Finite numbers only (JSON has no others); String() gives a form both YAML versions read as that number.
  if (typeof value === 'number') return Object.is(value, -0) ? '0' : String(value)
  if (isPlainSafe(value)) return value
  if (isLiteralSafe(value)) return literal(value, indent)
  return quote(value)
}

// Words that YAML 1.1 (or 1.2) resolves to booleans or null: written plain, they would not come back as strings.
const RESERVED = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~)$/

/**
 * Whether a string can be written plain. It must start with a letter, `_`,
 * `$` or `/` (so it is no number, date, `.inf`, indicator or anchor), use
 * only characters that mean nothing to YAML in block context (no `:`, `#`,
 * quotes or brackets), not end with a space, and not be a reserved word.
 */
function isPlainSafe (text: string): boolean {
  return /^[\p{L}_$/][\p{L}\p{N} _$/.+\-()=@,;!?&*^~%<>]*$/u.test(text) && !text.endsWith(' ') && !RESERVED.test(text)
}

// Characters YAML does not allow unescaped in a stream (its `c-printable` is everything else),
// plus U+2028/2029, which YAML 1.1 parsers take as line breaks.
// eslint-disable-next-line no-control-regex
const NON_PRINTABLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/gu

/**
 * Whether a multi-line string can be a literal block (`|`): it must have a
 * line break and start with something else, no carriage return (a parser
 * would turn `\r\n` into `\n`) or tab, and only printable characters. A
 * leading space or break would take an indentation indicator, whose meaning
 * differs between a mapping value and a sequence entry: such strings are
 * quoted instead.
 */
function isLiteralSafe (text: string): boolean {
  NON_PRINTABLE.lastIndex = 0
  return text.includes('\n') && !/^[ \n]/.test(text) && !/[\r\t]/.test(text) && !NON_PRINTABLE.test(text)
}

/**
 * A literal block: `|` then the lines, indented. The chomping indicator
 * keeps the trailing line breaks exactly (`-`: none, none: one, `+`: more).
 */
function literal (text: string, indent: string): string {
  const trailing = /\n*$/.exec(text)![0].length
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+'
  const body = trailing === 0 ? text : text.slice(0, -1) // the last break is the block's own
  const lines = body.split('\n').map((line) => line === '' ? '' : indent + line)
  return `|${chomp}\n${lines.join('\n')}`
}

/**
 * A double-quoted scalar. JSON's string syntax is YAML's double-quoted
 * syntax, except that YAML wants every non-printable character escaped
 * (JSON leaves DEL, C1 controls — NEL too, a line break to YAML 1.1 — and U+2028/2029 as they are).
 */
function quote (text: string): string {
  return JSON.stringify(text).replace(NON_PRINTABLE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
