import t from 'tap'
import { formatExtensions, headerHasToken, isToken, parseExtensions, parseSubprotocols, type ExtensionOffer } from '../../lib/protocol/index.js'

t.test('isToken follows the RFC 9110 tchar set', async (t) => {
  for (const ok of ['a', 'chat', 'v1.json', "!#$%&'*+-.^_`|~", 'ABCxyz019']) t.equal(isToken(ok), true, `${JSON.stringify(ok)} is a token`)
  for (const bad of ['', ' ', 'a b', 'a,b', 'a;b', 'a=b', '"a"', 'a/b', '(a)', 'a\tb', 'é', 'a\u0000', '[x]', '{x}', 'a@b', 'a:b', 'a?b', 'a\\b']) {
    t.equal(isToken(bad), false, `${JSON.stringify(bad)} is not a token`)
  }
})

t.test('headerHasToken: comma-separated, case-insensitive, whole elements only', async (t) => {
  const yes: Array<[string | string[], string]> = [
    ['Upgrade', 'upgrade'],
    ['upgrade', 'upgrade'],
    ['UPGRADE', 'upgrade'],
    ['keep-alive, Upgrade', 'upgrade'],
    ['keep-alive,Upgrade', 'upgrade'],
    ['Upgrade, keep-alive', 'upgrade'],
    ['  Upgrade\t,x', 'upgrade'],
    ['a,,upgrade,', 'upgrade'],
    [['keep-alive', 'Upgrade'], 'upgrade'],
    ['websocket', 'websocket'],
    ['WebSocket', 'websocket'],
    ['h2c, websocket', 'websocket']
  ]
  for (const [value, token] of yes) t.equal(headerHasToken(value, token), true, `${JSON.stringify(value)} has ${token}`)
  const no: Array<[string | string[] | undefined, string]> = [
    [undefined, 'upgrade'],
    ['', 'upgrade'],
    ['keep-alive', 'upgrade'],
    ['upgrade-insecure-requests', 'upgrade'],
    ['xupgrade', 'upgrade'],
    ['up grade', 'upgrade'],
    ['websocket/13', 'websocket'],
    ['websockets', 'websocket'],
    [[], 'upgrade'],
    [['keep-alive', 'close'], 'upgrade']
  ]
  for (const [value, token] of no) t.equal(headerHasToken(value, token), false, `${JSON.stringify(value)} lacks ${token}`)
})

t.test('parseSubprotocols', async (t) => {
  t.same(parseSubprotocols(undefined), [], 'absent header: no protocols')
  t.same(parseSubprotocols('chat'), ['chat'])
  t.same(parseSubprotocols('chat, superchat'), ['chat', 'superchat'], 'RFC 6455 §1.9 example')
  t.same(parseSubprotocols(' chat ,\tsuperchat\t'), ['chat', 'superchat'], 'whitespace around elements')
  t.same(parseSubprotocols('v2.json,v1.json'), ['v2.json', 'v1.json'], 'order is the client\'s preference')
  t.same(parseSubprotocols('chat, Chat'), ['chat', 'Chat'], 'names are case-sensitive')
  t.same(parseSubprotocols(['a', 'b, c']), ['a', 'b', 'c'], 'repeated headers are one list')
  // RFC 9110 §5.6.1.2: empty list elements are accepted and ignored.
  t.same(parseSubprotocols('chat,'), ['chat'], 'a trailing comma')
  t.same(parseSubprotocols(',chat'), ['chat'], 'a leading comma')
  t.same(parseSubprotocols('a, , b,,c'), ['a', 'b', 'c'], 'empty elements in the middle')

  for (const bad of ['chat, chat', 'a,b,a', '', ' ', ',', ' , ,', 'ch at', 'chat/1', '"chat"', 'chät', 'a;b']) {
    t.equal(parseSubprotocols(bad), null, `${JSON.stringify(bad)} is refused`)
  }
  t.equal(parseSubprotocols(['a', 'a']), null, 'a duplicate across repeated headers')
})

t.test('parseExtensions: RFC 6455 and RFC 7692 examples', async (t) => {
  const cases: Array<[string | string[], ExtensionOffer[]]> = [
    ['permessage-deflate', [{ name: 'permessage-deflate', params: [] }]],
    ['permessage-deflate; client_max_window_bits', [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }]],
    ['permessage-deflate; client_max_window_bits=10', [{ name: 'permessage-deflate', params: [['client_max_window_bits', '10']] }]],
    ['permessage-deflate; client_max_window_bits="10"', [{ name: 'permessage-deflate', params: [['client_max_window_bits', '10']] }]],
    // RFC 7692 §5.1: several offers, in preference order.
    ['permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits', [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true], ['server_max_window_bits', '10']] },
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] }
    ]],
    ['permessage-deflate; server_no_context_takeover; client_no_context_takeover', [
      { name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_no_context_takeover', true]] }
    ]],
    // RFC 6455 §9.1 examples.
    ['foo, bar; baz=2', [{ name: 'foo', params: [] }, { name: 'bar', params: [['baz', '2']] }]],
    ['mux; max-channels=4; flow-control, deflate-stream', [
      { name: 'mux', params: [['max-channels', '4'], ['flow-control', true]] },
      { name: 'deflate-stream', params: [] }
    ]],
    ['private-extension', [{ name: 'private-extension', params: [] }]],
    [['foo', 'bar; baz=2'], [{ name: 'foo', params: [] }, { name: 'bar', params: [['baz', '2']] }]]
  ]
  for (const [value, expected] of cases) t.same(parseExtensions(value), expected, JSON.stringify(value))
  t.same(parseExtensions(undefined), [], 'absent header')
})

t.test('parseExtensions: quoting, escapes and whitespace', async (t) => {
  t.same(parseExtensions('x; a="1\\0"'), [{ name: 'x', params: [['a', '10']] }], 'a quoted-pair is unescaped')
  t.same(parseExtensions('x; a="\\t\\o\\k"'), [{ name: 'x', params: [['a', 'tok']] }], 'every character may be escaped')
  t.same(parseExtensions('x; a="b", y'), [{ name: 'x', params: [['a', 'b']] }, { name: 'y', params: [] }], 'a comma after a quoted value')
  t.same(parseExtensions('  a ;  b = 1 ,\tc\t;d  '), [{ name: 'a', params: [['b', '1']] }, { name: 'c', params: [['d', true]] }],
    'optional whitespace everywhere it is allowed')
  t.same(parseExtensions('a,,b'), [{ name: 'a', params: [] }, { name: 'b', params: [] }], 'empty list elements are ignored')
  t.same(parseExtensions(', a ,'), [{ name: 'a', params: [] }])
  t.same(parseExtensions('a; b; b=1'), [{ name: 'a', params: [['b', true], ['b', '1']] }], 'repeated parameters are kept for the extension to judge')

  // RFC 6455 §9.1: a quoted value must still be a token once unescaped.
  for (const bad of ['x; a="b c"', 'x; a="b,c"', 'x; a=""', 'x; a="a\\"b"', 'x; a="é"']) {
    t.throws(() => parseExtensions(bad), { name: 'SyntaxError', message: /must be a token/ }, `${JSON.stringify(bad)}`)
  }
})

t.test('parseExtensions: errors name the position', async (t) => {
  const errors: Array<[string, number, RegExp]> = [
    ['a;', 2, /expected a token/],
    ['a b', 2, /expected "," or ";"/],
    ['=a', 0, /expected a token/],
    ['a; b="x', 7, /unterminated quoted string/],
    ['a; b="\\', 7, /unterminated escape/],
    ['a; b=', 5, /expected a token/],
    ['a; b=c d', 7, /expected "," or ";"/],
    ['a=1', 1, /expected "," or ";"/],
    ['a;;b', 2, /expected a token/],
    ['x; "q"', 3, /expected a token/],
    ['ä', 0, /expected a token/],
    ['', 0, /empty extension list/],
    [', ,', 3, /empty extension list/]
  ]
  for (const [value, position, what] of errors) {
    let caught: unknown
    try {
      parseExtensions(value)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof SyntaxError, `${JSON.stringify(value)} throws a SyntaxError`)
    t.match((caught as Error).message, new RegExp(`at position ${position}:`), `${JSON.stringify(value)}: position ${position}`)
    t.match((caught as Error).message, what, `${JSON.stringify(value)}: says what was wrong`)
  }
})

t.test('formatExtensions', async (t) => {
  t.equal(formatExtensions([{ name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_max_window_bits', '10']] }]),
    'permessage-deflate; server_no_context_takeover; client_max_window_bits=10')
  t.equal(formatExtensions([{ name: 'a', params: [] }, { name: 'b', params: [['c', '1']] }]), 'a, b; c=1')
  t.equal(formatExtensions([]), '')
  const offer = 'foo, bar; baz=2; qux'
  t.equal(formatExtensions(parseExtensions(offer)), offer, 'format(parse(x)) round-trips a canonical header')
})

t.test('adversarial 1 MB headers parse within a budget only linear parsers meet', async (t) => {
  // A quadratic or backtracking parser needs ~10^12 steps on a megabyte of
  // these shapes (hours); a linear one well under a second. Five seconds for all
  // of them leaves room for a slow, shared machine and none for the wrong algorithm.
  const inputs: Array<[string, string]> = [
    ['"a;" repeated', 'a;'.repeat(50000)],
    ['"a; " repeated, ending cleanly', 'a; '.repeat(50000) + 'a'],
    ['spaces', ' '.repeat(100000)],
    ['spaces then a stray character', ' '.repeat(100000) + '@'],
    ['token, spaces, token', 'a' + ' '.repeat(100000) + 'b'],
    ['quotes', '"'.repeat(100000)],
    ['a parameter whose quoted value never ends', 'a; b="' + 'x'.repeat(100000)],
    ['a quoted value of escapes', 'a; b="' + '\\x'.repeat(50000) + '"'],
    ['backslashes', 'a; b="' + '\\'.repeat(100000)],
    ['commas', ','.repeat(100000)],
    ['one long token', 'a'.repeat(100000)],
    ['"a=" repeated', 'a='.repeat(50000)],
    ['"a;b=" repeated', 'a;b='.repeat(25000)],
    ['"a;b=c," repeated', 'a;b=c,'.repeat(17000)],
    ['tabs and commas', '\t,'.repeat(50000)]
  ]
  const started = process.hrtime.bigint()
  for (const [shape, small] of inputs) {
    const value = small.repeat(10)
    const name = `${shape} ×10`
    let extensionsOutcome: string
    try {
      extensionsOutcome = `${parseExtensions(value).length} offers`
    } catch (err) {
      t.ok(err instanceof SyntaxError, `${name}: extensions fail with a SyntaxError`)
      extensionsOutcome = 'SyntaxError'
    }
    const protocols = parseSubprotocols(value)
    const hasToken = headerHasToken(value, 'websocket')
    t.pass(`${name} (${value.length} chars): extensions ${extensionsOutcome}, subprotocols ${protocols === null ? 'refused' : protocols.length}, token ${hasToken}`)
  }
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6
  t.ok(elapsedMs < 5000, `all ${inputs.length} shapes at ~1 MB parsed in ${elapsedMs.toFixed(0)} ms`)

  // Many distinct names: a duplicate check that compares each name with all
  // earlier ones is quadratic and takes many seconds here.
  const names = Array.from({ length: 150000 }, (_, i) => `p${i.toString(36)}`)
  const list = parseSubprotocols(names.join(','))
  t.equal(list?.length, names.length, `${names.length} distinct subprotocols (${names.join(',').length} chars) parse`)
  t.equal(parseSubprotocols(names.join(',') + ',p0'), null, 'and a duplicate at the very end is still found')
  t.equal(parseExtensions(names.join(',')).length, names.length, 'as many extension offers parse')
  t.equal(headerHasToken(names.join(','), 'websocket'), false)
})
