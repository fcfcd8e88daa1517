import http from 'node:http'
import Fastify from 'fastify'
import t from 'tap'
import websocket, { WebSocketError } from '../../lib/index.js'
import { build, registerError } from '../helpers/app.js'

t.test('@fastify/websocket\'s `options: { … }` for ws is refused at register, each key with what to use instead', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ options: { maxPayload: 1024 } }, /"options\.maxPayload": use `maxMessageSize`/],
    [{ options: { verifyClient: () => true } }, /"options\.verifyClient": authenticate in an `onRequest` or `preValidation` hook.*"Auth in a hook"/],
    [{ options: { server: http.createServer() } }, /"options\.server": the plugin serves the upgrades of the Fastify server itself/],
    [{ options: { noServer: true } }, /"options\.noServer": remove it: upgrades always go through Fastify's router and hooks/],
    [{ options: { path: '/ws' } }, /"options\.path": declare a route instead/],
    [{ options: { clientTracking: false } }, /"options\.clientTracking": remove it: open connections are always tracked, in `app\.websocket\.clients`/],
    [{ options: { perMessageDeflate: true } }, /"options\.perMessageDeflate": use `compression`/],
    [{ options: { handleProtocols: () => 'chat' } }, /"options\.handleProtocols": use `protocols`/],
    [{ options: { skipUTF8Validation: true } }, /"options\.skipUTF8Validation": remove it: text messages are always checked/],
    [{ options: { port: 8080 } }, /"options\.port": .*app\.listen/],
    [{ options: { autoPong: false } }, /"options\.autoPong": move it to the top level, as `autoPong`/],
    [{ options: { somethingElse: 1 } }, /"options\.somethingElse": not an option here \(ws's options do not apply/],
    [{ options: {} }, /"options": there is no `options` object here/]
  ]
  for (const [options, message] of cases) {
    const error = await registerError(options)
    t.ok(error instanceof WebSocketError, JSON.stringify(options))
    t.match(error, { code: 'WS_ERR_UNKNOWN_OPTION', message: /^fastify-rfc6455: unknown option / })
    t.match((error as Error).message, message)
  }
})

t.test('@fastify/websocket\'s old `handle` option is refused, saying which routes open connections', async (t) => {
  t.match(await registerError({ handle: () => {} }), {
    code: 'WS_ERR_UNKNOWN_OPTION',
    message: /"handle": remove it: only routes with `\{ websocket: true \}` or a `wsHandler` open connections/
  })
})

t.test('ws\'s options at the top level are refused with the same guidance', async (t) => {
  t.match(await registerError({ verifyClient: () => true }), {
    code: 'WS_ERR_UNKNOWN_OPTION',
    message: /^fastify-rfc6455: unknown option "verifyClient": authenticate in an `onRequest` or `preValidation` hook/
  })
  t.match(await registerError({ maxPayload: 10 }), { message: /"maxPayload": use `maxMessageSize`/ })
})

t.test('every unknown key is listed in one error; a near miss gets a suggestion', async (t) => {
  const error = await registerError({ maxMesageSize: 10, options: { maxPayload: 1, noServer: true }, Autopong: false, frobnicate: 1 })
  t.match(error, { code: 'WS_ERR_UNKNOWN_OPTION' })
  t.equal((error as Error).message, [
    'fastify-rfc6455: unknown options:',
    '  - "maxMesageSize": not an option; did you mean `maxMessageSize`?',
    '  - "options.maxPayload": use `maxMessageSize` (default 1 MiB; ws\'s default was 100 MiB)',
    '  - "options.noServer": remove it: upgrades always go through Fastify\'s router and hooks; for a WebSocket server detached from Fastify, use ws directly',
    '  - "Autopong": not an option; did you mean `autoPong`?',
    '  - "frobnicate": not an option'
  ].join('\n'))
})

t.test('a key is refused whatever its value, undefined included', async (t) => {
  t.match(await registerError({ verifyClient: undefined }), { code: 'WS_ERR_UNKNOWN_OPTION', message: /"verifyClient"/ })
})

t.test('Fastify\'s own register options (prefix, logLevel, logSerializers) are not refused; the other keys beside them are', async (t) => {
  const fastifyKeys = { prefix: '/ignored', logLevel: 'warn', logSerializers: {} }
  t.match(await registerError({ ...fastifyKeys, verifyClient: () => true }), {
    code: 'WS_ERR_UNKNOWN_OPTION',
    message: /^fastify-rfc6455: unknown option "verifyClient": [^\n]*$/
  }, 'only verifyClient is named')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { ...fastifyKeys, maxMessageSize: 100 } as any)
  app.get('/ws', { websocket: true }, (conn) => { conn.send('hi') })
  const client = await app.injectWS('/ws')
  t.equal(app.websocket.settings.maxMessageSize, 100, 'the plugin\'s own options still apply')
  client.terminate()
})

t.test('a route\'s `websocket: { … }` is checked the same way when the route is added', async (t) => {
  const app = await build(t)
  const add = (url: string, settings: object) => () => app.get(url, { websocket: settings as any }, () => {})
  t.throws(add('/a', { verifyClient: () => true }), {
    code: 'WS_ERR_UNKNOWN_OPTION',
    message: /^WebSocket route GET \/a: unknown option "websocket\.verifyClient": authenticate in an `onRequest` or `preValidation` hook/
  })
  t.throws(add('/b', { options: { maxPayload: 5 } }), { message: /^WebSocket route GET \/b: unknown option "websocket\.options\.maxPayload": use `maxMessageSize`/ })
  t.throws(add('/c', { handshakeTimeout: 5 }), { message: /^WebSocket route GET \/c: unknown option "websocket\.handshakeTimeout": it applies to the whole app; pass it to `register`/ })
  t.throws(add('/d', { preClose: () => {} }), { message: /"websocket\.preClose": it applies to the whole app/ })
  t.throws(add('/e', { closeTimout: 5 }), { message: /"websocket\.closeTimout": not an option; did you mean `closeTimeout`\?/ })
  t.throws(add('/f', { prefix: '/x' }), { code: 'WS_ERR_UNKNOWN_OPTION', message: /"websocket\.prefix": not an option/ })
})

t.test('`websocket` itself must be true, false or an object', async (t) => {
  const app = await build(t)
  for (const bad of ['yes', 1, ['maxMessageSize']]) {
    t.throws(() => app.get(`/r${String(bad)}`, { websocket: bad as any }, () => {}), {
      code: 'WS_ERR_INVALID_OPTION',
      message: /^WebSocket route GET \/r.*: websocket must be true, false or an object of settings/
    }, JSON.stringify(bad))
  }
})

t.test('bad values of options that were not checked before fail at registration', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ autoPong: 'no' }, /^fastify-rfc6455: autoPong must be true or false, got no$/],
    [{ retainRequest: 0 }, /^fastify-rfc6455: retainRequest must be true or false, got 0$/],
    [{ protocols: 'chat' }, /^fastify-rfc6455: protocols must be an array of subprotocol names or a function/],
    [{ protocols: ['chat', 2] }, /protocols must be an array of subprotocol names/],
    [{ highWaterMark: -1 }, /^fastify-rfc6455: highWaterMark must be a number of bytes, got -1$/]
  ]
  for (const [options, message] of cases) {
    t.match(await registerError(options), { code: 'WS_ERR_INVALID_OPTION', message }, JSON.stringify(options))
  }
})

t.test('piece limits and handshakeTimeout carry the invalid-option code too', async (t) => {
  t.match(await registerError({ maxMessagePieces: 0 }), { code: 'WS_ERR_INVALID_OPTION', message: /^fastify-rfc6455: maxMessagePieces must be/ })
  t.match(await registerError({ handshakeTimeout: 0 }), { code: 'WS_ERR_INVALID_OPTION', message: /^fastify-rfc6455: handshakeTimeout must be/ })
})
