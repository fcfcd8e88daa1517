/**
 * permessage-deflate (RFC 7692) negotiation, sans-I/O: offers in, agreed
 * parameters and the response out. No zlib here — the codec
 * (lib/compression) and the glue use what this module agrees on.
 *
 * Both sides read parameters with one function (`readParams`): RFC 7692 §5
 * gives the server and the client the same list of faults (an unknown
 * parameter, a repeated one, a value it cannot take), the server declining
 * the offer and the client failing the connection.
 */
import { invalidArgument, webSocketError, type WebSocketError } from './errors.js'
import type { ExtensionOffer } from './header-lists.js'

export const PERMESSAGE_DEFLATE = 'permessage-deflate'

/**
 * The parameters both sides agreed on for one connection (RFC 7692 §7.1).
 * The window sizes are what zlib is given on this side: 9..15, because an
 * agreed 8 is carried as 9 (see `zlibWindowBits`).
 */
export interface DeflateParams {
  /** The server resets its compression context after every message (§7.1.1.1). */
  serverNoContextTakeover: boolean
  /** The client resets its compression context after every message (§7.1.1.2). */
  clientNoContextTakeover: boolean
  /** LZ77 window (bits) the server compresses with, 9..15; 15 when not negotiated. */
  serverMaxWindowBits: number
  /** LZ77 window (bits) the client compresses with, 9..15; 15 when not negotiated. */
  clientMaxWindowBits: number
}

/**
 * What negotiation needs of a side's preferences. `ResolvedCompression`
 * (lib/compression/types.ts) has these fields and more, so it is passed as it is.
 * On a server, the two `ContextTakeover` flags say whether that side may keep its
 * context; the window sizes are the largest each side may use (8..15).
 */
export interface DeflatePreferences {
  serverContextTakeover: boolean
  clientContextTakeover: boolean
  serverMaxWindowBits: number
  clientMaxWindowBits: number
}

/** An offer or a response after `readParams`: each parameter at most once, every value checked. */
interface Params {
  serverNoContextTakeover: boolean
  clientNoContextTakeover: boolean
  /** undefined: absent. */
  serverMaxWindowBits: number | undefined
  /** undefined: absent; true: present without a value (allowed in an offer only, §7.1.2.2). */
  clientMaxWindowBits: number | true | undefined
}

const SERVER_NO_CONTEXT_TAKEOVER = 'server_no_context_takeover'
const CLIENT_NO_CONTEXT_TAKEOVER = 'client_no_context_takeover'
const SERVER_MAX_WINDOW_BITS = 'server_max_window_bits'
const CLIENT_MAX_WINDOW_BITS = 'client_max_window_bits'

/**
 * A window-bits value (§7.1.2.1, §7.1.2.2): "a decimal integer value without
 * leading zeroes between 8 to 15, inclusive" — so "08", "+9", "1e1", "0xA",
 * "8.0" are refused although Number() would take them. A quoted value arrives
 * here unquoted (parseExtensions), as §5.1 wants: `"10"` is 10.
 * Returns the number, or undefined if `text` is not such a value.
 */
function windowBitsValue (text: string): number | undefined {
  if (text.length === 1) return text === '8' || text === '9' ? Number(text) : undefined
  if (text.length !== 2 || text.charCodeAt(0) !== 0x31) return undefined
  const units = text.charCodeAt(1) - 0x30
  return units >= 0 && units <= 5 ? 10 + units : undefined
}

/**
 * The parameters of one permessage-deflate element, or why they are not
 * acceptable (§5: unknown parameter, repeated parameter, invalid value).
 * Names are compared exactly: RFC 7692 spells them in lower case and so does
 * every implementation; anything else is an unknown parameter.
 */
function readParams (element: ExtensionOffer): Params | string {
  const out: Params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: undefined, clientMaxWindowBits: undefined }
  // Four names at most are valid, so a short array; it also stops a long list at the first repeat.
  const seen: string[] = []
  for (const [name, value] of element.params) {
    if (seen.includes(name)) return `the parameter ${name} appears more than once`
    seen.push(name)
    switch (name) {
      case SERVER_NO_CONTEXT_TAKEOVER:
      case CLIENT_NO_CONTEXT_TAKEOVER:
        // §7.1.1.1, §7.1.1.2: "This extension parameter has no value."
        if (value !== true) return `${name} takes no value`
        if (name === SERVER_NO_CONTEXT_TAKEOVER) out.serverNoContextTakeover = true
        else out.clientNoContextTakeover = true
        break
      case SERVER_MAX_WINDOW_BITS: {
        // §7.1.2.1: always with a value, in an offer and in a response.
        const bits = value === true ? undefined : windowBitsValue(value)
        if (bits === undefined) return `${name} must have a value from 8 to 15, got ${value === true ? 'none' : JSON.stringify(value)}`
        out.serverMaxWindowBits = bits
        break
      }
      case CLIENT_MAX_WINDOW_BITS: {
        // §7.1.2.2: "no value or a decimal integer value"; the caller decides where no value is allowed.
        const bits = value === true ? true : windowBitsValue(value)
        if (bits === undefined) return `${name} must have no value or a value from 8 to 15, got ${JSON.stringify(value)}`
        out.clientMaxWindowBits = bits
        break
      }
      default:
        return `unknown parameter ${JSON.stringify(name)}`
    }
  }
  return out
}

/**
 * The window size zlib is given for an agreed one: 8 becomes 9. zlib's raw
 * deflate refuses an 8-bit window (zlib.h: "a windowBits value of 8 … is not
 * supported"; Node silently turns it into 9), but 9 is a correct way to honour
 * a limit of 8: zlib's deflate never refers further back than its window less
 * MIN_LOOKAHEAD (deflate.h MAX_DIST: 512 − 262 = 250 bytes), which is within
 * the 256 bytes a peer limited to 8 bits keeps. So `server_max_window_bits=8`
 * is accepted and answered as 8 rather than declined (§7.1.2.1 would allow
 * declining it). For an inflater a larger window than the sender's is always
 * fine, so 9 serves the receiving side too.
 */
function zlibWindowBits (agreed: number): number {
  return agreed < 9 ? 9 : agreed
}

/** Refuses preferences that no caller should pass (ResolvedCompression is checked before it gets here). */
function checkPreferences (prefs: DeflatePreferences): void {
  for (const key of ['serverContextTakeover', 'clientContextTakeover'] as const) {
    if (typeof prefs[key] !== 'boolean') throw invalidArgument(new TypeError(`${key} must be a boolean, got ${String(prefs[key])}`))
  }
  for (const key of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
    const bits = prefs[key]
    if (!Number.isInteger(bits) || bits < 8 || bits > 15) throw invalidArgument(new RangeError(`${key} must be an integer from 8 to 15, got ${String(bits)}`))
  }
}

/**
 * Server side (RFC 7692 §5, §7): the first acceptable `permessage-deflate`
 * offer, with the agreed parameters and the response element that names
 * exactly them; null if there is none. An offer this module cannot accept —
 * an unknown or repeated parameter, a value out of range or where none is
 * allowed — is declined and the next one considered (§5: the server
 * "MUST decline", which never fails the handshake). Other extensions are skipped.
 *
 * Every well-formed offer is accepted: each parameter either binds only the
 * side that asked for it or can be answered with a smaller value.
 */
export function negotiateDeflate (offers: ExtensionOffer[], prefs: DeflatePreferences): { params: DeflateParams, response: ExtensionOffer } | null {
  checkPreferences(prefs)
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue
    const offered = readParams(offer)
    if (typeof offered === 'string') continue
    return acceptOffer(offered, prefs)
  }
  return null
}

function acceptOffer (offered: Params, prefs: DeflatePreferences): { params: DeflateParams, response: ExtensionOffer } {
  const response: ExtensionOffer['params'] = []

  // §7.1.1.1: accepting an offer that has server_no_context_takeover means
  // answering with it; and the server "MAY include" it in any response, which
  // it does when it prefers not to keep a compressor per connection.
  const serverNoContextTakeover = offered.serverNoContextTakeover || !prefs.serverContextTakeover
  if (serverNoContextTakeover) response.push([SERVER_NO_CONTEXT_TAKEOVER, true])

  // §7.1.1.2: the server "MAY include" client_no_context_takeover in any
  // response, and the client must then not keep its context. When the client
  // offered it, it promised that already ("a hint that … the client is not
  // going to use context takeover"), so the server relies on it and says so.
  const clientNoContextTakeover = offered.clientNoContextTakeover || !prefs.clientContextTakeover
  if (clientNoContextTakeover) response.push([CLIENT_NO_CONTEXT_TAKEOVER, true])

  // §7.1.2.1: an offered server_max_window_bits is accepted by answering with
  // "the same or smaller value"; without one in the offer the server "MAY
  // include" it anyway to announce a window below the default 15.
  const serverBits = Math.min(offered.serverMaxWindowBits ?? 15, prefs.serverMaxWindowBits)
  if (offered.serverMaxWindowBits !== undefined || serverBits < 15) response.push([SERVER_MAX_WINDOW_BITS, String(serverBits)])

  // §7.1.2.2: client_max_window_bits may be answered only if the client
  // offered it (then it supports the parameter), with a value no larger than
  // an offered one. Not offered: the client compresses with up to 15 bits and
  // the server must inflate with 15 — declining instead would turn
  // compression off for every client that does not offer it.
  let clientBits = 15
  if (offered.clientMaxWindowBits !== undefined) {
    clientBits = Math.min(offered.clientMaxWindowBits === true ? 15 : offered.clientMaxWindowBits, prefs.clientMaxWindowBits)
    // An offered value already binds the client, answered or not; it is echoed so the response names what was agreed.
    if (offered.clientMaxWindowBits !== true || clientBits < 15) response.push([CLIENT_MAX_WINDOW_BITS, String(clientBits)])
  }

  return {
    params: {
      serverNoContextTakeover,
      clientNoContextTakeover,
      serverMaxWindowBits: zlibWindowBits(serverBits),
      clientMaxWindowBits: zlibWindowBits(clientBits)
    },
    response: { name: PERMESSAGE_DEFLATE, params: response }
  }
}

/**
 * Client side: the one permessage-deflate offer a client sends.
 * `client_max_window_bits` is always there — without a value it says the
 * client can take a limit from the server (§7.1.2.2), which servers such as
 * ws need before they agree to a smaller client window. The no-context-takeover
 * parameters and window limits follow the preferences; the server may answer
 * with stricter values, which `acceptDeflateResponse` takes.
 */
export function deflateOffer (prefs: DeflatePreferences): ExtensionOffer {
  checkPreferences(prefs)
  const params: ExtensionOffer['params'] = []
  if (!prefs.serverContextTakeover) params.push([SERVER_NO_CONTEXT_TAKEOVER, true])
  if (!prefs.clientContextTakeover) params.push([CLIENT_NO_CONTEXT_TAKEOVER, true])
  if (prefs.serverMaxWindowBits < 15) params.push([SERVER_MAX_WINDOW_BITS, String(prefs.serverMaxWindowBits)])
  params.push([CLIENT_MAX_WINDOW_BITS, prefs.clientMaxWindowBits < 15 ? String(prefs.clientMaxWindowBits) : true])
  return { name: PERMESSAGE_DEFLATE, params }
}

/**
 * Client side: checks the server's `Sec-WebSocket-Extensions` (parsed) against
 * the offer `deflateOffer(prefs)` made — pass the same `prefs`. Returns the
 * agreed parameters, null if the server declined (no element), or throws
 * `WS_ERR_INVALID_UPGRADE_RESPONSE`: RFC 6455 §4.1 and RFC 7692 §5 make the
 * client fail the connection on an extension it did not offer, more than one
 * permessage-deflate, an unknown or repeated parameter or an invalid value,
 * and on a response that does not accept what the offer asked for.
 */
export function acceptDeflateResponse (response: ExtensionOffer[], prefs: DeflatePreferences): DeflateParams | null {
  const offered = readParams(deflateOffer(prefs)) as Params
  let element: ExtensionOffer | undefined
  for (const ext of response) {
    if (ext.name !== PERMESSAGE_DEFLATE) throw invalidResponse(`the server chose extension ${JSON.stringify(ext.name)}, which the client did not offer`)
    // One offer was made, so one element at most can answer it (§5).
    if (element !== undefined) throw invalidResponse('the server answered permessage-deflate more than once')
    element = ext
  }
  if (element === undefined) return null

  const got = readParams(element)
  if (typeof got === 'string') throw invalidResponse(`permessage-deflate response: ${got}`)

  // §7.1.1.1: a server accepts server_no_context_takeover by including it; the server may also add it unasked.
  if (offered.serverNoContextTakeover && !got.serverNoContextTakeover) {
    throw invalidResponse('permessage-deflate response: the offer asked for server_no_context_takeover and the response lacks it')
  }
  // §7.1.2.1: an offered server_max_window_bits is accepted with the same or a smaller value; unasked, any 8..15.
  if (offered.serverMaxWindowBits !== undefined && (got.serverMaxWindowBits === undefined || got.serverMaxWindowBits > offered.serverMaxWindowBits)) {
    throw invalidResponse(`permessage-deflate response: server_max_window_bits must be answered with at most ${offered.serverMaxWindowBits}, got ${got.serverMaxWindowBits ?? 'none'}`)
  }
  // §7.1.2.2: only if offered, always with a value, never above an offered value.
  if (got.clientMaxWindowBits !== undefined) {
    if (offered.clientMaxWindowBits === undefined) throw invalidResponse('permessage-deflate response: client_max_window_bits was not offered')
    if (got.clientMaxWindowBits === true) throw invalidResponse('permessage-deflate response: client_max_window_bits must have a value')
    if (offered.clientMaxWindowBits !== true && got.clientMaxWindowBits > offered.clientMaxWindowBits) {
      throw invalidResponse(`permessage-deflate response: client_max_window_bits must be at most the offered ${offered.clientMaxWindowBits}, got ${got.clientMaxWindowBits}`)
    }
  }

  // An offered client limit or client_no_context_takeover binds the client whatever the answer (§7.1.1.2, §7.1.2.2).
  const clientBits = typeof got.clientMaxWindowBits === 'number'
    ? got.clientMaxWindowBits
    : typeof offered.clientMaxWindowBits === 'number' ? offered.clientMaxWindowBits : 15
  return {
    serverNoContextTakeover: got.serverNoContextTakeover,
    clientNoContextTakeover: got.clientNoContextTakeover || offered.clientNoContextTakeover,
    serverMaxWindowBits: zlibWindowBits(got.serverMaxWindowBits ?? 15),
    clientMaxWindowBits: zlibWindowBits(clientBits)
  }
}

function invalidResponse (message: string): WebSocketError {
  return webSocketError('WS_ERR_INVALID_UPGRADE_RESPONSE', message)
}
