/**
 * Hand-written, linear-time parsers for the list-valued headers of the
 * handshake. No regular expressions: a backtracking pattern over these
 * attacker-controlled headers is a known denial-of-service.
 */

import { invalidArgument } from './errors.js'

// RFC 9110 §5.6.2 tchar
const TOKEN_CHARS = new Uint8Array(128)
for (const ch of "!#$%&'*+-.^_`|~") TOKEN_CHARS[ch.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TOKEN_CHARS[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TOKEN_CHARS[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TOKEN_CHARS[c] = 1

export function isTokenChar (code: number): boolean {
  return code < 128 && TOKEN_CHARS[code] === 1
}

export function isToken (value: string): boolean {
  if (value.length === 0) return false
  for (let i = 0; i < value.length; i++) {
    if (!isTokenChar(value.charCodeAt(i))) return false
  }
  return true
}

function isOws (code: number): boolean {
  return code === 0x20 || code === 0x09
}

/** The elements of a comma-separated header list, with optional whitespace trimmed (empty ones kept). */
function listElements (value: string): string[] {
  const out: string[] = []
  let start = 0
  for (let i = 0; i <= value.length; i++) {
    if (i === value.length || value.charCodeAt(i) === 0x2c) {
      let a = start
      let b = i
      while (a < b && isOws(value.charCodeAt(a))) a++
      while (b > a && isOws(value.charCodeAt(b - 1))) b--
      out.push(value.slice(a, b))
      start = i + 1
    }
  }
  return out
}

/**
 * True if the comma-separated header `value` contains `token`
 * (case-insensitive, as for `Connection` and `Upgrade`).
 */
export function headerHasToken (value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false
  if (Array.isArray(value)) return value.some((v) => headerHasToken(v, token))
  const wanted = token.toLowerCase()
  // Upgrade elements may carry a version ("websocket/13" is not "websocket").
  return listElements(value).some((element) => element.length === wanted.length && element.toLowerCase() === wanted)
}

/**
 * Parses `Sec-WebSocket-Protocol`: a comma-separated list of tokens. Empty
 * elements are skipped (RFC 9110 §5.6.1.2: recipients accept and ignore
 * them). Returns null if an element is not a token or is repeated, or if a
 * header is present without any element.
 */
export function parseSubprotocols (value: string | string[] | undefined): string[] | null {
  if (value === undefined) return []
  const elements = listElements(Array.isArray(value) ? value.join(',') : value)
  const names: string[] = []
  // A set, not names.includes(): a long list of distinct names must stay linear.
  const seen = new Set<string>()
  for (const name of elements) {
    if (name.length === 0) continue
    if (!isToken(name) || seen.has(name)) return null
    seen.add(name)
    names.push(name)
  }
  return names.length > 0 ? names : null
}

export interface ExtensionOffer {
  name: string
  /** Parameters in order; a parameter without a value is `true`. */
  params: Array<[name: string, value: string | true]>
}

/**
 * Parses `Sec-WebSocket-Extensions` (RFC 6455 §9.1, RFC 7692 §5):
 *
 *   extension-list = 1#( extension-token *( ";" extension-param ) )
 *   extension-param = token [ "=" ( token / quoted-string ) ]
 *
 * Quoted values are unescaped and, as RFC 6455 §9.1 requires, must then be
 * tokens. Throws a SyntaxError naming the position of the first error.
 */
export function parseExtensions (value: string | string[] | undefined): ExtensionOffer[] {
  if (value === undefined) return []
  const input = Array.isArray(value) ? value.join(',') : value
  const offers: ExtensionOffer[] = []
  const length = input.length
  let i = 0

  const fail = (what: string): never => {
    throw invalidArgument(new SyntaxError(`invalid Sec-WebSocket-Extensions header at position ${i}: ${what}`))
  }
  const skipOws = (): void => {
    while (i < length && isOws(input.charCodeAt(i))) i++
  }
  const readToken = (): string => {
    const start = i
    while (i < length && isTokenChar(input.charCodeAt(i))) i++
    if (i === start) fail('expected a token')
    return input.slice(start, i)
  }
  const readQuoted = (): string => {
    i++ // opening quote
    let out = ''
    for (;;) {
      if (i >= length) fail('unterminated quoted string')
      const c = input.charCodeAt(i)
      if (c === 0x22) {
        i++
        break
      }
      if (c === 0x5c) {
        i++
        if (i >= length) fail('unterminated escape in quoted string')
      }
      out += input[i]
      i++
    }
    if (!isToken(out)) fail('a quoted parameter value must be a token')
    return out
  }

  for (;;) {
    skipOws()
    // Empty list elements (",,") are allowed by the list syntax and ignored.
    if (i < length && input.charCodeAt(i) === 0x2c) {
      i++
      continue
    }
    if (i >= length) break
    const offer: ExtensionOffer = { name: readToken(), params: [] }
    skipOws()
    while (i < length && input.charCodeAt(i) === 0x3b) {
      i++
      skipOws()
      const name = readToken()
      skipOws()
      let paramValue: string | true = true
      if (i < length && input.charCodeAt(i) === 0x3d) {
        i++
        skipOws()
        paramValue = i < length && input.charCodeAt(i) === 0x22 ? readQuoted() : readToken()
        skipOws()
      }
      offer.params.push([name, paramValue])
    }
    offers.push(offer)
    if (i >= length) break
    if (input.charCodeAt(i) !== 0x2c) fail('expected "," or ";"')
    i++
  }
  if (offers.length === 0) fail('empty extension list')
  return offers
}

/** Serializes negotiated extensions for the response header. */
export function formatExtensions (extensions: ExtensionOffer[]): string {
  return extensions.map((ext) => [ext.name, ...ext.params.map(([k, v]) => v === true ? k : `${k}=${v}`)].join('; ')).join(', ')
}
