import * as crypto from 'node:crypto'
import { createHash } from 'node:crypto'
import t from 'tap'
import { acceptKeyHasher, type OneShotHash } from '../../lib/protocol/handshake.js'
import {
  WEBSOCKET_GUID, WEBSOCKET_VERSION, buildClientRequest, buildUpgradeResponse, computeAccept, generateKey, isValidKey,
  parseResponseHead, selectSubprotocol, validateHandshake, validateServerResponse,
  type HandshakeRefused, type HandshakeRequest, type ResponseHead
} from '../../lib/protocol/index.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='

type Headers = Record<string, string | string[] | undefined>

/** A valid opening handshake, with some fields replaced (undefined removes a header). */
function request (overrides: { method?: string | undefined, httpVersion?: string | undefined, headers?: Headers } = {}): HandshakeRequest {
  const headers: Headers = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13',
    ...overrides.headers
  }
  for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name]
  return {
    method: 'method' in overrides ? overrides.method : 'GET',
    httpVersion: 'httpVersion' in overrides ? overrides.httpVersion : '1.1',
    headers
  }
}

function refusal (req: HandshakeRequest): HandshakeRefused {
  const result = validateHandshake(req)
  if (result.ok) throw new Error('expected a refusal')
  return result
}

t.test('acceptKeyHasher: the one-shot crypto.hash where the runtime has it, createHash where it does not', async (t) => {
  const oneShot = (crypto as { hash?: OneShotHash }).hash
  const calls: string[] = []
  const spy: OneShotHash = (algorithm, data, encoding) => {
    calls.push(data)
    return createHash(algorithm).update(data).digest(encoding)
  }
  t.equal(acceptKeyHasher(spy)(KEY), ACCEPT, 'with a one-shot hash')
  t.same(calls, [KEY + WEBSOCKET_GUID], 'the one-shot hash is what computes it')
  t.equal(acceptKeyHasher(undefined)(KEY), ACCEPT, 'the fallback, as on a runtime without crypto.hash')
  if (oneShot !== undefined) t.equal(acceptKeyHasher(oneShot)(KEY), ACCEPT, "this runtime's crypto.hash")
})

t.test('computeAccept: the RFC 6455 §1.3 example', async (t) => {
  t.equal(computeAccept(KEY), ACCEPT)
  t.equal(WEBSOCKET_GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
  t.equal(computeAccept('AAAAAAAAAAAAAAAAAAAAAA=='), createHash('sha1').update('AAAAAAAAAAAAAAAAAAAAAA==' + WEBSOCKET_GUID).digest('base64'))
})

t.test('a valid handshake is accepted', async (t) => {
  const result = validateHandshake(request())
  t.same(result, { ok: true, key: KEY, accept: ACCEPT, protocols: [], extensions: [] })

  const full = validateHandshake(request({
    httpVersion: '2.0',
    headers: {
      upgrade: 'WebSocket',
      connection: 'keep-alive, Upgrade',
      'sec-websocket-protocol': 'chat, superchat',
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits'
    }
  }))
  t.same(full, {
    ok: true,
    key: KEY,
    accept: ACCEPT,
    protocols: ['chat', 'superchat'],
    extensions: [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }]
  }, 'protocols and extensions are parsed; later HTTP versions are fine')
})

t.test('method must be GET, else 405 with Allow', async (t) => {
  for (const method of ['POST', 'PUT', 'HEAD', 'get', 'CONNECT', undefined]) {
    const r = refusal(request({ method }))
    t.equal(r.status, 405, `${method}: 405`)
    t.same(r.headers, { Allow: 'GET' }, `${method}: Allow: GET`)
    t.match(r.reason, /GET request/, `${method}: the reason names the rule`)
  }
  const first = refusal({ method: 'POST', headers: {} })
  t.equal(first.status, 405, 'the method is checked first')
})

t.test('a handshake with a body is refused with 400', async (t) => {
  for (const headers of [{ 'content-length': '5' }, { 'content-length': '010' }, { 'transfer-encoding': 'chunked' }, { 'transfer-encoding': 'identity' }]) {
    const r = refusal(request({ headers }))
    t.equal(r.status, 400, `${JSON.stringify(headers)}: 400`)
    t.match(r.reason, /must not have a body/, `${JSON.stringify(headers)}: the reason names the rule`)
  }
  for (const length of ['0', '00']) t.ok(validateHandshake(request({ headers: { 'content-length': length } })).ok, `Content-Length: ${length} is no body`)
  t.equal(refusal(request({ method: 'POST', headers: { 'content-length': '5' } })).status, 405, 'the method is checked first')
})

t.test('HTTP/1.1 or later', async (t) => {
  for (const httpVersion of ['1.0', '0.9', '1', undefined, 'abc', '1.x', '']) {
    const r = refusal(request({ httpVersion }))
    t.equal(r.status, 400, `${String(httpVersion)}: 400`)
    t.match(r.reason, /HTTP\/1\.1 or later/, `${String(httpVersion)}: the reason names the rule`)
    t.same(r.headers, {})
  }
  for (const httpVersion of ['1.1', '1.2', '2', '2.0', '3.0']) {
    t.equal(validateHandshake(request({ httpVersion })).ok, true, `${httpVersion} is accepted`)
  }
})

t.test('Host is required', async (t) => {
  for (const host of [undefined, '']) {
    const r = refusal(request({ headers: { host } }))
    t.equal(r.status, 400)
    t.match(r.reason, /Host/, `${JSON.stringify(host)}: the reason names the rule`)
  }
})

t.test('Upgrade must contain the token websocket', async (t) => {
  for (const upgrade of [undefined, '', 'h2c', 'websocket/13', 'websockets', 'web socket']) {
    const r = refusal(request({ headers: { upgrade } }))
    t.equal(r.status, 400, `${JSON.stringify(upgrade)}: 400`)
    t.match(r.reason, /Upgrade header/, `${JSON.stringify(upgrade)}: the reason names the rule`)
  }
  for (const upgrade of ['websocket', 'WebSocket', 'WEBSOCKET', 'h2c, websocket', ' websocket ']) {
    t.equal(validateHandshake(request({ headers: { upgrade } })).ok, true, `${JSON.stringify(upgrade)} is accepted`)
  }
})

t.test('Connection must contain the token upgrade', async (t) => {
  for (const connection of [undefined, '', 'keep-alive', 'close', 'upgrade-insecure-requests', 'keep-alive upgrade']) {
    const r = refusal(request({ headers: { connection } }))
    t.equal(r.status, 400, `${JSON.stringify(connection)}: 400`)
    t.match(r.reason, /Connection header/, `${JSON.stringify(connection)}: the reason names the rule`)
  }
  for (const connection of ['Upgrade', 'upgrade', 'keep-alive, Upgrade', 'Upgrade, HTTP2-Settings', 'keep-alive,UPGRADE', ['keep-alive', 'Upgrade']]) {
    t.equal(validateHandshake(request({ headers: { connection } })).ok, true, `${JSON.stringify(connection)} is accepted`)
  }
})

t.test('Sec-WebSocket-Key must be the base64 of exactly 16 bytes', async (t) => {
  const bad: Array<[string | undefined, string]> = [
    [undefined, 'missing'],
    ['', 'empty'],
    ['dGhlIHNhbXBsZSBub25jZQ=', 'one "=" short'],
    ['dGhlIHNhbXBsZSBub25jZQ', 'unpadded'],
    ['dGhlIHNhbXBsZSBub25jZQ===', '25 characters'],
    [Buffer.alloc(15).toString('base64'), '15 bytes'],
    [Buffer.alloc(17).toString('base64'), '17 bytes'],
    [Buffer.alloc(32).toString('base64'), '32 bytes'],
    ['dGhlIHNhbXBsZSBub25jZ===', '"=" inside the 22 characters'],
    ['dGhlIHNhbXBsZSBub25j-Q==', 'base64url "-"'],
    ['dGhlIHNhbXBsZSBub25j_Q==', 'base64url "_"'],
    ['dGhlIHNhbXBsZSBub25j!Q==', '"!"'],
    ['dGhlIHNhbXBsZSBub25j Q==', 'a space'],
    ['dGhlIHNhbXBsZSBub25jéQ==', 'a non-ASCII letter'],
    ['dGhlIHNhbXBsZSBub25jZQ=x', 'last padding character wrong']
  ]
  for (const [key, name] of bad) {
    t.equal(isValidKey(key), false, `isValidKey: ${name}`)
    const r = refusal(request({ headers: { 'sec-websocket-key': key } }))
    t.equal(r.status, 400, `${name}: 400`)
    t.match(r.reason, /Sec-WebSocket-Key/, `${name}: the reason names the rule`)
  }
  for (const key of [KEY, Buffer.alloc(16).toString('base64'), Buffer.alloc(16, 0xff).toString('base64'), 'ABCDEFGHIJKLMNOPQRSTUQ==']) {
    t.equal(isValidKey(key), true, `${key} is valid`)
    t.equal(validateHandshake(request({ headers: { 'sec-websocket-key': key } })).ok, true, `${key} is accepted`)
  }
  t.equal(isValidKey('+/+/+/+/+/+/+/+/+/+/+A=='), true, 'the whole alphabet, including + and /')
})

t.test('Sec-WebSocket-Version must be 13, else 426 with Sec-WebSocket-Version: 13', async (t) => {
  for (const version of [undefined, '', '8', '12', '14', '13, 8', '0']) {
    const r = refusal(request({ headers: { 'sec-websocket-version': version } }))
    t.equal(r.status, 426, `${JSON.stringify(version)}: 426`)
    t.same(r.headers, { 'Sec-WebSocket-Version': '13' }, `${JSON.stringify(version)}: advertises version 13`)
    t.match(r.reason, /Sec-WebSocket-Version/, `${JSON.stringify(version)}: the reason names the rule`)
  }
  t.equal(WEBSOCKET_VERSION, '13')
})

t.test('subprotocol and extension headers must parse', async (t) => {
  for (const value of ['chat, chat', ',', 'ch at', '']) {
    const r = refusal(request({ headers: { 'sec-websocket-protocol': value } }))
    t.equal(r.status, 400, `protocols ${JSON.stringify(value)}: 400`)
    t.match(r.reason, /Sec-WebSocket-Protocol/, `protocols ${JSON.stringify(value)}: the reason names the rule`)
  }
  for (const value of ['a;', 'x; y="a b"', '']) {
    const r = refusal(request({ headers: { 'sec-websocket-extensions': value } }))
    t.equal(r.status, 400, `extensions ${JSON.stringify(value)}: 400`)
    t.match(r.reason, /Sec-WebSocket-Extensions header at position \d+/, `extensions ${JSON.stringify(value)}: the reason gives the position`)
  }
})

t.test('rules are checked in the RFC order: the first failure is reported', async (t) => {
  t.match(refusal(request({ httpVersion: '1.0', headers: { host: undefined } })).reason, /HTTP\/1\.1/)
  t.match(refusal(request({ headers: { host: undefined, upgrade: undefined } })).reason, /Host/)
  t.match(refusal(request({ headers: { upgrade: 'x', connection: 'x' } })).reason, /Upgrade/)
  t.match(refusal(request({ headers: { connection: 'x', 'sec-websocket-key': 'x' } })).reason, /Connection/)
  t.match(refusal(request({ headers: { 'sec-websocket-key': 'x', 'sec-websocket-version': '8' } })).reason, /Key/)
  t.equal(refusal(request({ headers: { 'sec-websocket-version': '8', 'sec-websocket-protocol': ',' } })).status, 426)
})

t.test('selectSubprotocol', async (t) => {
  const offered = ['mqtt', 'chat', 'json']
  t.equal(selectSubprotocol(offered, ['json', 'chat']), 'json', 'a list picks by server preference')
  t.equal(selectSubprotocol(offered, ['chat', 'json']), 'chat')
  t.equal(selectSubprotocol(offered, ['xml']), undefined, 'no overlap: none')
  t.equal(selectSubprotocol(offered, []), undefined)
  t.equal(selectSubprotocol(offered, ['CHAT']), undefined, 'names are compared exactly')
  t.equal(selectSubprotocol(offered, undefined), undefined, 'no selector: none')
  t.equal(selectSubprotocol([], ['chat']), undefined, 'nothing offered: none')

  let seen: string[] = []
  t.equal(selectSubprotocol(offered, (list) => { seen = list; return 'json' }), 'json', 'a function picks')
  t.same(seen, offered, 'the function sees the offer in the client\'s order')
  t.equal(selectSubprotocol(offered, () => undefined), undefined)
  t.equal(selectSubprotocol(offered, () => null), undefined)
  t.equal(selectSubprotocol(offered, () => false), undefined)
  t.throws(() => selectSubprotocol(offered, () => 'xml'), /"xml", which the client did not offer/, 'a protocol that was not offered throws')
  t.throws(() => selectSubprotocol(offered, () => ''), /did not offer/, 'so does an empty name')
  let called = false
  t.equal(selectSubprotocol([], () => { called = true; return 'x' }), undefined)
  t.equal(called, false, 'the function is not asked when nothing was offered')
})

t.test('buildUpgradeResponse', async (t) => {
  t.equal(buildUpgradeResponse({ accept: ACCEPT }),
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
    '\r\n')
  t.equal(buildUpgradeResponse({
    accept: ACCEPT,
    protocol: 'chat',
    extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_max_window_bits', '10']] }],
    headers: { 'X-Request-Id': 'abc', 'X-Number': 42, 'Set-Cookie': ['a=1', 'b=2'] }
  }),
  'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
    'Sec-WebSocket-Protocol: chat\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n' +
    'X-Request-Id: abc\r\n' +
    'X-Number: 42\r\n' +
    'Set-Cookie: a=1\r\n' +
    'Set-Cookie: b=2\r\n' +
    '\r\n', 'protocol, extensions and extra headers (arrays repeat the header)')
  t.notMatch(buildUpgradeResponse({ accept: ACCEPT, extensions: [] }), /Extensions/, 'no extensions: no header')

  const injections: Array<[string, Record<string, string | number | readonly string[]>]> = [
    ['CRLF in a value', { 'X-A': 'ok\r\nSet-Cookie: evil=1' }],
    ['LF in a value', { 'X-A': 'ok\nX-B: 1' }],
    ['CR in a value', { 'X-A': 'ok\rX-B: 1' }],
    ['CRLF in a name', { 'X-A: 1\r\nX-B': 'v' }],
    ['CRLF in one array element', { 'X-A': ['fine', 'bad\r\n'] }]
  ]
  for (const [name, headers] of injections) {
    t.throws(() => buildUpgradeResponse({ accept: ACCEPT, headers }), /line break/, `${name} is refused`)
  }
})

t.test('client: generateKey', async (t) => {
  const keys = new Set<string>()
  for (let i = 0; i < 100; i++) {
    const key = generateKey()
    t.equal(Buffer.from(key, 'base64').length, 16, 'decodes to 16 bytes')
    t.equal(isValidKey(key), true, 'passes the server\'s check')
    keys.add(key)
  }
  t.equal(keys.size, 100, 'fresh every time')
})

t.test('client: buildClientRequest', async (t) => {
  t.equal(buildClientRequest({ path: '/chat?room=1', host: 'server.example.com:8080', key: KEY }),
    'GET /chat?room=1 HTTP/1.1\r\n' +
    'Host: server.example.com:8080\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${KEY}\r\n` +
    'Sec-WebSocket-Version: 13\r\n' +
    '\r\n')
  const withExtras = buildClientRequest({ path: '/', host: 'h', key: KEY, protocols: ['chat', 'superchat'], headers: { Origin: 'http://example.com' } })
  t.match(withExtras, /\r\nSec-WebSocket-Protocol: chat, superchat\r\n/)
  t.match(withExtras, /\r\nOrigin: http:\/\/example.com\r\n\r\n$/)
  t.notMatch(buildClientRequest({ path: '/', host: 'h', key: KEY, protocols: [] }), /Protocol/, 'no protocols: no header')
  t.throws(() => buildClientRequest({ path: '/', host: 'h', key: KEY, protocols: ['a b'] }), SyntaxError, 'a protocol that is not a token')
  t.throws(() => buildClientRequest({ path: '/', host: 'h', key: KEY, headers: { 'X-A': 'a\r\nX-B: b' } }), /line break/)
  t.throws(() => buildClientRequest({ path: '/', host: 'h', key: KEY, headers: { 'X-A\n': 'a' } }), /line break/)
})

const GOOD_RESPONSE = 'HTTP/1.1 101 Switching Protocols\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
  'Sec-WebSocket-Protocol: chat\r\n' +
  '\r\n'

t.test('client: parseResponseHead', async (t) => {
  const bytes = Buffer.from(GOOD_RESPONSE)
  const head = parseResponseHead(bytes)
  t.same(head, {
    statusCode: 101,
    statusMessage: 'Switching Protocols',
    headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': ACCEPT, 'sec-websocket-protocol': 'chat' },
    length: bytes.length
  })

  const early: number[] = []
  for (let n = 0; n < bytes.length; n++) if (parseResponseHead(bytes.subarray(0, n)) !== null) early.push(n)
  t.same(early, [], 'every proper prefix is incomplete (null)')

  // Frames that follow the head in the same chunk are not part of it.
  const withFrame = Buffer.concat([bytes, Buffer.from([0x81, 0x02, 0x68, 0x69])])
  t.equal(parseResponseHead(withFrame)?.length, bytes.length, 'length stops at the blank line')

  const trickyText = 'HTTP/1.1 101\r\nX-A: 1\r\nx-a:  2 \r\nX-Empty:\r\nX-Colon: a:b\r\n\r\n'
  const tricky = parseResponseHead(Buffer.from(trickyText))
  t.same(tricky, {
    statusCode: 101,
    statusMessage: '',
    headers: { 'x-a': '1, 2', 'x-empty': '', 'x-colon': 'a:b' },
    length: trickyText.length
  }, 'no reason phrase; repeated headers joined; names lower-cased; values trimmed')

  const malformed: Array<[string, RegExp]> = [
    ['FOO\r\n\r\n', /not an HTTP\/1.x/],
    ['HTTP/2 101 Switching\r\n\r\n', /not an HTTP\/1.x/],
    ['HTTP/1.1 abc Switching\r\n\r\n', /status line/],
    ['HTTP/1.1 10 Short\r\n\r\n', /status line/],
    ['HTTP/1.1 1010 Long\r\n\r\n', /status line/],
    ['HTTP/1.1 0x65 Hex\r\n\r\n', /status line/],
    ['HTTP/1.1 1e2 Exponent\r\n\r\n', /status line/],
    ['HTTP/1.1 +99 Sign\r\n\r\n', /status line/],
    ['HTTP/1.1  101 Two spaces\r\n\r\n', /status line/],
    ['HTTP/1.1\r\n\r\n', /status line/],
    ['HTTP/1.1 101 OK\r\nNoColonHere\r\n\r\n', /header line/],
    ['HTTP/1.1 101 OK\r\n: no name\r\n\r\n', /header line/]
  ]
  for (const [text, error] of malformed) {
    t.throws(() => parseResponseHead(Buffer.from(text)), error, `${JSON.stringify(text.split('\r\n')[0] + ' …')} is refused`)
  }

  const huge = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nX-Pad: ' + 'p'.repeat(200) + '\r\n\r\n')
  t.throws(() => parseResponseHead(huge.subarray(0, 150), 100), /exceeds 100 bytes/, 'an incomplete head over the limit')
  t.throws(() => parseResponseHead(huge, 100), /exceeds 100 bytes/, 'a complete head over the limit')
  const firstFailure = (() => {
    for (let n = 0; n <= huge.length; n++) {
      try {
        parseResponseHead(huge.subarray(0, n), 100)
      } catch {
        return n
      }
    }
    return -1
  })()
  t.equal(firstFailure, 101, 'refused as soon as more than 100 bytes have arrived')
  t.ok(parseResponseHead(bytes, bytes.length), 'a head of exactly the limit is fine')
  t.throws(() => parseResponseHead(bytes, bytes.length - 1), /exceeds/, 'one byte less is not')
})

t.test('client: validateServerResponse', async (t) => {
  const head = (): ResponseHead => parseResponseHead(Buffer.from(GOOD_RESPONSE))!
  t.same(validateServerResponse(head(), KEY, ['superchat', 'chat']), { protocol: 'chat' })

  const noProtocol = head()
  delete noProtocol.headers['sec-websocket-protocol']
  t.same(validateServerResponse(noProtocol, KEY, ['chat']), { protocol: undefined }, 'the server may pick none')

  const cases: Array<[string, (h: ResponseHead) => void, RegExp, string[]?]> = [
    ['status 200', (h) => { h.statusCode = 200 }, /expected status 101, got 200/],
    ['status 426', (h) => { h.statusCode = 426 }, /expected status 101/],
    ['no Upgrade', (h) => { delete h.headers.upgrade }, /Upgrade/],
    ['Upgrade: h2c', (h) => { h.headers.upgrade = 'h2c' }, /Upgrade/],
    ['no Connection', (h) => { delete h.headers.connection }, /Connection/],
    ['wrong accept', (h) => { h.headers['sec-websocket-accept'] = computeAccept('AAAAAAAAAAAAAAAAAAAAAA==') }, /Sec-WebSocket-Accept/],
    ['missing accept', (h) => { delete h.headers['sec-websocket-accept'] }, /Sec-WebSocket-Accept/],
    ['an extension nobody offered', (h) => { h.headers['sec-websocket-extensions'] = 'permessage-deflate' }, /extension/],
    ['an unoffered protocol', (h) => { h.headers['sec-websocket-protocol'] = 'mqtt' }, /subprotocol "mqtt"/],
    ['a protocol when none were offered', () => {}, /subprotocol/, []],
    ['two protocols', (h) => { h.headers['sec-websocket-protocol'] = 'chat, superchat' }, /subprotocol/],
    ['a malformed protocol', (h) => { h.headers['sec-websocket-protocol'] = 'ch at' }, /subprotocol/]
  ]
  for (const [name, change, error, offered] of cases) {
    const h = head()
    change(h)
    t.throws(() => validateServerResponse(h, KEY, offered ?? ['chat', 'superchat']), error, `${name} is refused`)
  }
  t.throws(() => validateServerResponse(head(), 'AAAAAAAAAAAAAAAAAAAAAA==', ['chat']), /Accept/, 'an accept for another key is refused')
})

/** Reads a request head the way Node's HTTP parser would present it to the handshake. */
function parseRequest (text: string): HandshakeRequest {
  const [requestLine, ...lines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n')
  const [method, , version] = requestLine.split(' ')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { method, httpVersion: version.replace('HTTP/', ''), headers }
}

t.test('client and server handshakes fit together', async (t) => {
  const key = generateKey()
  const requestText = buildClientRequest({ path: '/ws', host: 'localhost', key, protocols: ['v2', 'v1'] })
  const accepted = validateHandshake(parseRequest(requestText))
  if (!accepted.ok) throw new Error(accepted.reason)
  t.same(accepted.protocols, ['v2', 'v1'])
  const protocol = selectSubprotocol(accepted.protocols, ['v1', 'v2'])
  t.equal(protocol, 'v1', 'server preference')
  const responseText = buildUpgradeResponse({ accept: accepted.accept, protocol })
  const bytes = Buffer.from(responseText)
  let head: ResponseHead | null = null
  for (let n = 1; n <= bytes.length && head === null; n++) head = parseResponseHead(bytes.subarray(0, n))
  t.ok(head, 'the response head parses')
  t.same(validateServerResponse(head!, key, ['v2', 'v1']), { protocol: 'v1' }, 'and the client accepts it')
})
