import t, { type Test } from 'tap'
import type { DeflateParams as SharedDeflateParams, ResolvedCompression } from '../../lib/compression/types.js'
import {
  PERMESSAGE_DEFLATE, WebSocketError, acceptDeflateResponse, deflateOffer, formatExtensions, negotiateDeflate, parseExtensions,
  type DeflateParams, type DeflatePreferences
} from '../../lib/protocol/index.js'

// permessage-deflate negotiation (RFC 7692 §5, §7), both sides, as tables of
// header text in and header text out: the offers the RFC shows, every shape
// a parameter can take, malformed offers (declined, never fatal), the
// server's preferences, and the client's checks of a response.

/** Accepts whatever the client asks and adds nothing: the RFC's examples are answered as the RFC shows. */
const KEEP: DeflatePreferences = { serverContextTakeover: true, clientContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }
/** The shipped defaults' shape: no context kept on either side. */
const STATELESS: DeflatePreferences = { ...KEEP, serverContextTakeover: false, clientContextTakeover: false }

const params = (serverNoContextTakeover: boolean, clientNoContextTakeover: boolean, serverMaxWindowBits = 15, clientMaxWindowBits = 15): DeflateParams =>
  ({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits })
const DEFAULT = params(false, false)

/** The server's answer to a request header, as response text and params; null when it declines every offer. */
function serve (header: string, prefs: DeflatePreferences = KEEP): { response: string, params: DeflateParams } | null {
  const result = negotiateDeflate(parseExtensions(header), prefs)
  return result === null ? null : { response: formatExtensions([result.response]), params: result.params }
}

type Row = [offer: string, prefs: DeflatePreferences, response: string, agreed: DeflateParams]

function accepts (t: Test, rows: Row[]): void {
  for (const [offer, prefs, response, agreed] of rows) t.same(serve(offer, prefs), { response, params: agreed }, `${offer}  →  ${response}`)
}

t.test('RFC 7692 §7.1.3 examples, answered as the RFC answers them', async (t) => {
  accepts(t, [
    // The simplest offer, and the simplest acceptance: the same header.
    ['permessage-deflate', KEEP, 'permessage-deflate', DEFAULT],
    // A 1,024-byte server window asked for, with client_max_window_bits to say the client can take a limit.
    ['permessage-deflate; client_max_window_bits; server_max_window_bits=10', KEEP, 'permessage-deflate; server_max_window_bits=10', params(false, false, 10)],
    // The same with a fallback offer: the first one is acceptable, so it is the one accepted.
    ['permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits', KEEP,
      'permessage-deflate; server_max_window_bits=10', params(false, false, 10)],
    // What Chromium and Firefox send.
    ['permessage-deflate; client_max_window_bits', KEEP, 'permessage-deflate', DEFAULT]
  ])
  // A server that limits the client answers a valueless client_max_window_bits with a value (§7.1.2.2), as for the fallback option.
  t.same(serve('permessage-deflate; client_max_window_bits', { ...KEEP, clientMaxWindowBits: 10 }),
    { response: 'permessage-deflate; client_max_window_bits=10', params: params(false, false, 15, 10) })
  // §7.1.3: with no client_max_window_bits offered, the response must not have one, whatever the server would like.
  t.same(serve('permessage-deflate', { ...KEEP, clientMaxWindowBits: 9 }), { response: 'permessage-deflate', params: DEFAULT })
})

t.test('every parameter shape the offer may carry is accepted and answered', async (t) => {
  accepts(t, [
    // §7.1.1.1: accepting server_no_context_takeover means answering with it.
    ['permessage-deflate; server_no_context_takeover', KEEP, 'permessage-deflate; server_no_context_takeover', params(true, false)],
    // §7.1.1.2: the client's promise is relied on and named.
    ['permessage-deflate; client_no_context_takeover', KEEP, 'permessage-deflate; client_no_context_takeover', params(false, true)],
    ['permessage-deflate; client_no_context_takeover; server_no_context_takeover', KEEP,
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover', params(true, true)],
    // §7.1.2.1: every value 8..15 is accepted by answering with it (this server's preference is 15).
    ...[9, 10, 11, 12, 13, 14, 15].map((bits): Row =>
      [`permessage-deflate; server_max_window_bits=${bits}`, KEEP, `permessage-deflate; server_max_window_bits=${bits}`, params(false, false, bits)]),
    // 8 is answered as 8 and compressed with zlib's 9, which never reaches back further than 250 bytes.
    ['permessage-deflate; server_max_window_bits=8', KEEP, 'permessage-deflate; server_max_window_bits=8', params(false, false, 9)],
    // §7.1.2.2: an offered value binds the client; echoed so the response names it.
    ...[9, 10, 11, 12, 13, 14, 15].map((bits): Row =>
      [`permessage-deflate; client_max_window_bits=${bits}`, KEEP, `permessage-deflate; client_max_window_bits=${bits}`, params(false, false, 15, bits)]),
    ['permessage-deflate; client_max_window_bits=8', KEEP, 'permessage-deflate; client_max_window_bits=8', params(false, false, 15, 9)],
    // §5.1: a quoted value is the same value once unquoted.
    ['permessage-deflate; server_max_window_bits="10"', KEEP, 'permessage-deflate; server_max_window_bits=10', params(false, false, 10)],
    ['permessage-deflate; client_max_window_bits="12"', KEEP, 'permessage-deflate; client_max_window_bits=12', params(false, false, 15, 12)],
    ['permessage-deflate; client_max_window_bits="1\\2"', KEEP, 'permessage-deflate; client_max_window_bits=12', params(false, false, 15, 12)],
    // Whitespace allowed by the list syntax, and all four parameters in any order.
    ['permessage-deflate ;\tclient_max_window_bits = 11 ; server_max_window_bits= 12;server_no_context_takeover ;client_no_context_takeover', KEEP,
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11',
      params(true, true, 12, 11)]
  ])
})

t.test('a malformed offer is declined, never fatal (RFC 7692 §5)', async (t) => {
  const declined = [
    // Repeated parameters, with the same or different values.
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
    'permessage-deflate; server_max_window_bits=10; server_max_window_bits=11',
    'permessage-deflate; client_max_window_bits; client_max_window_bits',
    'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    // Unknown parameters; names are compared exactly.
    'permessage-deflate; foo',
    'permessage-deflate; foo=1',
    'permessage-deflate; server_max_window_bit=10',
    'permessage-deflate; Server_No_Context_Takeover',
    'permessage-deflate; CLIENT_MAX_WINDOW_BITS',
    'permessage-deflate; client_no_context_takeover; mux',
    // A value where none is allowed.
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; client_no_context_takeover=true',
    'permessage-deflate; client_no_context_takeover="true"',
    // server_max_window_bits always needs a value.
    'permessage-deflate; server_max_window_bits',
    // Values outside 8..15 or not written as "a decimal integer value without leading zeroes".
    ...['7', '16', '0', '1', '08', '015', '00', '1e1', '0xA', '+9', '-9', '9.0', '10.', 'ten', 'a', '99999999999999999999', '"08"', '"16"'].flatMap((value) => [
      `permessage-deflate; server_max_window_bits=${value}`,
      `permessage-deflate; client_max_window_bits=${value}`
    ]),
    // Other extensions are not ours to answer.
    'x-webkit-deflate-frame',
    'permessage-foo',
    'deflate-frame; server_max_window_bits=10',
    'PerMessage-Deflate'
  ]
  for (const offer of declined) t.equal(serve(offer), null, offer)
  t.equal(negotiateDeflate([], KEEP), null, 'no offer at all')
})

t.test('offers are considered in order: the first acceptable one is answered', async (t) => {
  accepts(t, [
    ['permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits', KEEP, 'permessage-deflate', DEFAULT],
    ['permessage-deflate; foo, permessage-deflate; server_no_context_takeover', KEEP, 'permessage-deflate; server_no_context_takeover', params(true, false)],
    ['permessage-deflate; server_max_window_bits=08, permessage-deflate; server_max_window_bits=12', KEEP, 'permessage-deflate; server_max_window_bits=12', params(false, false, 12)],
    ['permessage-deflate; client_max_window_bits; client_max_window_bits, permessage-deflate; client_max_window_bits=10, permessage-deflate', KEEP,
      'permessage-deflate; client_max_window_bits=10', params(false, false, 15, 10)],
    // The first acceptable offer wins even when a later one would suit the server better.
    ['permessage-deflate, permessage-deflate; server_no_context_takeover', STATELESS,
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover', params(true, true)],
    ['permessage-deflate; server_max_window_bits=12, permessage-deflate', KEEP, 'permessage-deflate; server_max_window_bits=12', params(false, false, 12)],
    // Other extensions mixed in are skipped, whatever their parameters.
    ['x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover', KEEP, 'permessage-deflate; client_no_context_takeover', params(false, true)],
    ['foo; server_max_window_bits=10, permessage-deflate; bar, baz, permessage-deflate; server_max_window_bits=9, qux', KEEP,
      'permessage-deflate; server_max_window_bits=9', params(false, false, 9)],
    [`${'permessage-deflate; server_max_window_bits=16, '.repeat(50)}permessage-deflate`, KEEP, 'permessage-deflate', DEFAULT]
  ])
  // Repeated headers are one list (parseExtensions joins them).
  const result = negotiateDeflate(parseExtensions(['foo', 'permessage-deflate; nope', 'permessage-deflate; server_max_window_bits=11']), KEEP)
  t.same(result?.response, { name: PERMESSAGE_DEFLATE, params: [['server_max_window_bits', '11']] })
})

t.test("the server's preferences shape every answer", async (t) => {
  const chrome = 'permessage-deflate; client_max_window_bits'
  accepts(t, [
    // §7.1.1.1 and §7.1.1.2: the server may add both no-context-takeover parameters to any response.
    ['permessage-deflate', STATELESS, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover', params(true, true)],
    [chrome, STATELESS, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover', params(true, true)],
    [chrome, { ...KEEP, serverContextTakeover: false }, 'permessage-deflate; server_no_context_takeover', params(true, false)],
    [chrome, { ...KEEP, clientContextTakeover: false }, 'permessage-deflate; client_no_context_takeover', params(false, true)],
    // A server that would keep its context still honours a client's request not to.
    ['permessage-deflate; server_no_context_takeover', KEEP, 'permessage-deflate; server_no_context_takeover', params(true, false)],
    // §7.1.2.1: the server may announce a smaller window unasked, and answers an offer with the smaller of the two.
    ['permessage-deflate', { ...KEEP, serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10', params(false, false, 10)],
    ['permessage-deflate; server_max_window_bits=12', { ...KEEP, serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10', params(false, false, 10)],
    ['permessage-deflate; server_max_window_bits=9', { ...KEEP, serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=9', params(false, false, 9)],
    ['permessage-deflate; server_max_window_bits=8', { ...KEEP, serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=8', params(false, false, 9)],
    ['permessage-deflate', { ...KEEP, serverMaxWindowBits: 8 }, 'permessage-deflate; server_max_window_bits=8', params(false, false, 9)],
    // §7.1.2.2: a client limit only where the client offered client_max_window_bits; otherwise the client may use 15.
    ['permessage-deflate', { ...KEEP, clientMaxWindowBits: 10 }, 'permessage-deflate', DEFAULT],
    ['permessage-deflate; server_no_context_takeover', { ...KEEP, clientMaxWindowBits: 10 }, 'permessage-deflate; server_no_context_takeover', params(true, false)],
    [chrome, { ...KEEP, clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=10', params(false, false, 15, 10)],
    [chrome, { ...KEEP, clientMaxWindowBits: 8 }, 'permessage-deflate; client_max_window_bits=8', params(false, false, 15, 9)],
    ['permessage-deflate; client_max_window_bits=12', { ...KEEP, clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=10', params(false, false, 15, 10)],
    ['permessage-deflate; client_max_window_bits=9', { ...KEEP, clientMaxWindowBits: 10 }, 'permessage-deflate; client_max_window_bits=9', params(false, false, 15, 9)],
    // Everything at once.
    [`${chrome}; server_max_window_bits=13`, { serverContextTakeover: false, clientContextTakeover: false, serverMaxWindowBits: 11, clientMaxWindowBits: 12 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12',
      params(true, true, 11, 12)]
  ])
})

// Every offer built from each parameter's shapes (absent, valueless, 7..16,
// "08"), against several server preferences: where an offer is accepted, its
// response must name exactly the agreed parameters and respect the offer.
t.test('for every offer: the response names exactly what was agreed, within what was offered', async (t) => {
  const flags: Array<true | undefined> = [undefined, true]
  const values: Array<string | true | undefined> = [undefined, true, '08', ...Array.from({ length: 10 }, (_, i) => String(7 + i))]
  const prefsList: DeflatePreferences[] = [KEEP, STATELESS, { ...KEEP, serverMaxWindowBits: 9, clientMaxWindowBits: 8 }, { ...STATELESS, serverMaxWindowBits: 12, clientMaxWindowBits: 11 }]
  const inRange = (v: string | true | undefined): boolean => v === undefined || (typeof v === 'string' && /^(8|9|1[0-5])$/.test(v))
  let accepted = 0
  let declined = 0
  for (const snct of flags) {
    for (const cnct of flags) {
      for (const smwb of values) {
        for (const cmwb of values) {
          const offer: Array<[string, string | true]> = []
          if (snct !== undefined) offer.push(['server_no_context_takeover', true])
          if (cnct !== undefined) offer.push(['client_no_context_takeover', true])
          if (smwb !== undefined) offer.push(['server_max_window_bits', smwb])
          if (cmwb !== undefined) offer.push(['client_max_window_bits', cmwb])
          const valid = inRange(smwb) && (cmwb === true || inRange(cmwb))
          for (const prefs of prefsList) {
            const result = negotiateDeflate([{ name: PERMESSAGE_DEFLATE, params: offer }], prefs)
            if (!valid) {
              if (result !== null) t.fail(`accepted ${JSON.stringify(offer)}`)
              declined++
              continue
            }
            if (result === null) {
              t.fail(`declined ${JSON.stringify(offer)}`)
              continue
            }
            accepted++
            const got = new Map(result.response.params)
            const agreed = result.params
            const zlib = (bits: number): number => Math.max(9, bits)
            const ok = result.response.name === PERMESSAGE_DEFLATE && got.size === result.response.params.length &&
              got.has('server_no_context_takeover') === agreed.serverNoContextTakeover &&
              got.has('client_no_context_takeover') === agreed.clientNoContextTakeover &&
              (snct === undefined || agreed.serverNoContextTakeover) && (cnct === undefined || agreed.clientNoContextTakeover) &&
              agreed.serverNoContextTakeover === (snct === true || !prefs.serverContextTakeover) &&
              zlib(Number(got.get('server_max_window_bits') ?? 15)) === agreed.serverMaxWindowBits &&
              (smwb === undefined || (got.has('server_max_window_bits') && Number(got.get('server_max_window_bits')) <= Number(smwb))) &&
              Number(got.get('server_max_window_bits') ?? 15) <= prefs.serverMaxWindowBits &&
              (cmwb !== undefined || !got.has('client_max_window_bits')) &&
              zlib(Number(got.get('client_max_window_bits') ?? (cmwb === true || cmwb === undefined ? 15 : cmwb))) === agreed.clientMaxWindowBits &&
              (typeof cmwb !== 'string' || Number(got.get('client_max_window_bits')) <= Number(cmwb)) &&
              (cmwb === undefined || agreed.clientMaxWindowBits <= zlib(prefs.clientMaxWindowBits)) &&
              [...got.values()].every((v) => v === true || /^(8|9|1[0-5])$/.test(v))
            if (!ok) t.fail(`${JSON.stringify(offer)} with ${JSON.stringify(prefs)} → ${formatExtensions([result.response])} ${JSON.stringify(agreed)}`)
          }
        }
      }
    }
  }
  t.equal(accepted, 2 * 2 * 9 * 10 * prefsList.length, 'every well-formed offer is accepted')
  t.equal(declined, 2 * 2 * (13 * 13 - 9 * 10) * prefsList.length, 'every malformed one is declined')
})

t.test('deflateOffer: what a client offers for its preferences', async (t) => {
  const rows: Array<[DeflatePreferences, string]> = [
    [KEEP, 'permessage-deflate; client_max_window_bits'],
    [STATELESS, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits'],
    [{ ...KEEP, serverContextTakeover: false }, 'permessage-deflate; server_no_context_takeover; client_max_window_bits'],
    [{ ...KEEP, clientContextTakeover: false }, 'permessage-deflate; client_no_context_takeover; client_max_window_bits'],
    [{ ...KEEP, serverMaxWindowBits: 10 }, 'permessage-deflate; server_max_window_bits=10; client_max_window_bits'],
    [{ ...KEEP, clientMaxWindowBits: 12 }, 'permessage-deflate; client_max_window_bits=12'],
    [{ serverContextTakeover: false, clientContextTakeover: false, serverMaxWindowBits: 8, clientMaxWindowBits: 9 },
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=9']
  ]
  for (const [prefs, expected] of rows) {
    const offer = deflateOffer(prefs)
    t.equal(formatExtensions([offer]), expected, expected)
    t.same(parseExtensions(formatExtensions([offer])), [offer], 'the offer survives the header text')
  }
})

/** The client's view of a response header, for an offer made with `prefs`. */
const answer = (response: string, prefs: DeflatePreferences = KEEP): DeflateParams | null => acceptDeflateResponse(parseExtensions(response), prefs)

t.test('acceptDeflateResponse: the answers a client takes', async (t) => {
  t.equal(acceptDeflateResponse([], KEEP), null, 'no permessage-deflate: the server declined')
  t.equal(acceptDeflateResponse(parseExtensions(undefined), STATELESS), null, 'no header at all')
  const rows: Array<[string, DeflatePreferences, DeflateParams]> = [
    ['permessage-deflate', KEEP, DEFAULT],
    // §7.1.1.1 and §7.1.1.2: the server may add either no-context-takeover parameter unasked.
    ['permessage-deflate; server_no_context_takeover', KEEP, params(true, false)],
    ['permessage-deflate; client_no_context_takeover', KEEP, params(false, true)],
    ['permessage-deflate; server_no_context_takeover; client_no_context_takeover', STATELESS, params(true, true)],
    // The client's own client_no_context_takeover binds it whether or not the server names it.
    ['permessage-deflate; server_no_context_takeover', STATELESS, params(true, true)],
    // §7.1.2.1: an unasked server window, any 8..15 (the client inflates 8 with 9).
    ['permessage-deflate; server_max_window_bits=12', KEEP, params(false, false, 12)],
    ['permessage-deflate; server_max_window_bits=8', KEEP, params(false, false, 9)],
    ['permessage-deflate; server_max_window_bits="9"', KEEP, params(false, false, 9)],
    // §7.1.2.1: an asked-for window answered with the same or less.
    ['permessage-deflate; server_max_window_bits=10', { ...KEEP, serverMaxWindowBits: 10 }, params(false, false, 10)],
    ['permessage-deflate; server_max_window_bits=9', { ...KEEP, serverMaxWindowBits: 10 }, params(false, false, 9)],
    // §7.1.2.2: client_max_window_bits (always offered) answered with a value; an offered value holds without an answer.
    ['permessage-deflate; client_max_window_bits=10', KEEP, params(false, false, 15, 10)],
    ['permessage-deflate; client_max_window_bits=8', KEEP, params(false, false, 15, 9)],
    ['permessage-deflate', { ...KEEP, clientMaxWindowBits: 12 }, params(false, false, 15, 12)],
    ['permessage-deflate; client_max_window_bits=12', { ...KEEP, clientMaxWindowBits: 12 }, params(false, false, 15, 12)],
    ['permessage-deflate; client_max_window_bits=10', { ...KEEP, clientMaxWindowBits: 12 }, params(false, false, 15, 10)],
    // Parameters in any order.
    ['permessage-deflate; client_max_window_bits=11; server_max_window_bits=10; client_no_context_takeover; server_no_context_takeover', KEEP,
      params(true, true, 10, 11)]
  ]
  for (const [response, prefs, expected] of rows) t.same(answer(response, prefs), expected, `${response} for ${formatExtensions([deflateOffer(prefs)])}`)
})

t.test('acceptDeflateResponse: an invalid answer fails the handshake with WS_ERR_INVALID_UPGRADE_RESPONSE', async (t) => {
  const rows: Array<[string, DeflatePreferences, RegExp]> = [
    // RFC 6455 §4.1: an extension the client did not offer.
    ['x-webkit-deflate-frame', KEEP, /did not offer/],
    ['permessage-deflate, foo', KEEP, /"foo", which the client did not offer/],
    ['foo, permessage-deflate', KEEP, /"foo"/],
    ['PerMessage-Deflate', KEEP, /did not offer/],
    // One offer, so one answer at most.
    ['permessage-deflate, permessage-deflate', KEEP, /more than once/],
    // RFC 7692 §5: unknown or repeated parameters, invalid values.
    ['permessage-deflate; foo', KEEP, /unknown parameter "foo"/],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', KEEP, /more than once/],
    ['permessage-deflate; client_max_window_bits=10; client_max_window_bits=10', KEEP, /more than once/],
    ['permessage-deflate; server_no_context_takeover=1', KEEP, /takes no value/],
    ['permessage-deflate; client_no_context_takeover="x"', KEEP, /takes no value/],
    ['permessage-deflate; server_max_window_bits', KEEP, /server_max_window_bits must have a value/],
    ...['7', '16', '08', '1e1', '"16"'].map((v): [string, DeflatePreferences, RegExp] => [`permessage-deflate; server_max_window_bits=${v}`, KEEP, /from 8 to 15/]),
    ...['7', '16', '08', '1e1'].map((v): [string, DeflatePreferences, RegExp] => [`permessage-deflate; client_max_window_bits=${v}`, KEEP, /from 8 to 15/]),
    // §7.1.2.2: in a response client_max_window_bits needs a value, at most the offered one.
    ['permessage-deflate; client_max_window_bits', KEEP, /client_max_window_bits must have a value/],
    ['permessage-deflate; client_max_window_bits=13', { ...KEEP, clientMaxWindowBits: 12 }, /at most the offered 12, got 13/],
    // §7.1.2.1: an offered server window must be answered, with the same or less.
    ['permessage-deflate', { ...KEEP, serverMaxWindowBits: 10 }, /at most 10, got none/],
    ['permessage-deflate; server_max_window_bits=11', { ...KEEP, serverMaxWindowBits: 10 }, /at most 10, got 11/],
    // §7.1.1.1: an offered server_no_context_takeover is accepted only by naming it.
    ['permessage-deflate', { ...KEEP, serverContextTakeover: false }, /lacks it/],
    ['permessage-deflate; client_no_context_takeover', STATELESS, /lacks it/]
  ]
  for (const [response, prefs, message] of rows) {
    t.throws(() => answer(response, prefs), { name: 'WebSocketError', code: 'WS_ERR_INVALID_UPGRADE_RESPONSE', closeCode: undefined, message }, response)
  }
  try {
    answer('foo')
  } catch (err) {
    t.ok(err instanceof WebSocketError, 'a WebSocketError')
  }
})

t.test('a client and a server of this module always agree, through the header text', async (t) => {
  const prefsList: DeflatePreferences[] = []
  for (const serverContextTakeover of [true, false]) {
    for (const clientContextTakeover of [true, false]) {
      for (const serverMaxWindowBits of [8, 9, 12, 15]) {
        for (const clientMaxWindowBits of [8, 10, 15]) prefsList.push({ serverContextTakeover, clientContextTakeover, serverMaxWindowBits, clientMaxWindowBits })
      }
    }
  }
  let pairs = 0
  for (const client of prefsList) {
    for (const server of prefsList) {
      const request = formatExtensions([deflateOffer(client)])
      const result = negotiateDeflate(parseExtensions(request), server)
      if (result === null) {
        t.fail(`${request} declined`)
        continue
      }
      const clientView = acceptDeflateResponse(parseExtensions(formatExtensions([result.response])), client)
      if (JSON.stringify(clientView) !== JSON.stringify(result.params)) t.fail(`${request} → ${formatExtensions([result.response])}: ${JSON.stringify(clientView)} vs ${JSON.stringify(result.params)}`)
      pairs++
    }
  }
  t.equal(pairs, prefsList.length ** 2, `${pairs} pairs of preferences agree`)
})

t.test('preferences: ResolvedCompression passes as it is; impossible values are refused', async (t) => {
  const resolved: ResolvedCompression = { threshold: 1024, level: 6, memLevel: 8, concurrency: 4, ...STATELESS, serverMaxWindowBits: 12 }
  const result = negotiateDeflate(parseExtensions('permessage-deflate'), resolved)
  const shared: SharedDeflateParams | undefined = result?.params
  t.same(shared, params(true, true, 12), 'the agreed params are the shared DeflateParams type')
  t.same(acceptDeflateResponse(parseExtensions('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12'), resolved),
    params(true, true, 12))

  for (const bad of [7, 16, 9.5, Number.NaN, '15' as unknown as number]) {
    for (const key of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
      const prefs = { ...KEEP, [key]: bad }
      for (const call of [() => negotiateDeflate([], prefs), () => deflateOffer(prefs), () => acceptDeflateResponse([], prefs)]) {
        t.throws(call, { name: 'RangeError', code: 'WS_ERR_INVALID_ARGUMENT', message: new RegExp(key) }, `${key}: ${String(bad)}`)
      }
    }
  }
  for (const key of ['serverContextTakeover', 'clientContextTakeover'] as const) {
    t.throws(() => negotiateDeflate([], { ...KEEP, [key]: 'yes' as unknown as boolean }), { name: 'TypeError', code: 'WS_ERR_INVALID_ARGUMENT' }, key)
  }
})
