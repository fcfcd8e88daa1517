// The `asyncapi` plugin option and the options of app.websocket.asyncapi():
// checked as every option is, unknown keys (WS_ERR_UNKNOWN_OPTION, with a
// near miss) and values they cannot take (WS_ERR_INVALID_OPTION).
import Fastify from 'fastify'
import t from 'tap'
import websocket, { WebSocketError } from '../../lib/index.js'
import { registerError } from '../helpers/app.js'

t.test('unknown keys in `asyncapi: { … }` are refused at register, with a near miss', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ asyncapi: { routeprefix: '/docs' } }, /"asyncapi\.routeprefix": not an option; did you mean `routePrefix`\?/],
    [{ asyncapi: { infos: {} } }, /"asyncapi\.infos": not an option; did you mean `info`\?/],
    [{ asyncapi: { exposeRoute: true } }, /"asyncapi\.exposeRoute": not an option$/]
  ]
  for (const [options, message] of cases) {
    const error = await registerError(options)
    t.ok(error instanceof WebSocketError, JSON.stringify(options))
    t.match(error, { code: 'WS_ERR_UNKNOWN_OPTION', message })
  }
})

t.test('values `asyncapi` cannot take are refused at register', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [true, /asyncapi must be an object \(\{ routePrefix, info, servers, id \}\), got true/],
    [['/docs'], /asyncapi must be an object .* got an array/],
    [{ routePrefix: 'docs' }, /asyncapi\.routePrefix must be a path below the root, such as '\/asyncapi', got "docs"/],
    [{ routePrefix: '/' }, /asyncapi\.routePrefix must be a path below the root/],
    [{ routePrefix: 1 }, /asyncapi\.routePrefix must be a path below the root.*got 1/],
    [{ info: 'x' }, /asyncapi\.info must be an object/],
    [{ info: { title: 1 } }, /asyncapi\.info\.title must be a string, got 1/],
    [{ info: { version: 2 } }, /asyncapi\.info\.version must be a string, got 2/],
    [{ servers: [] }, /asyncapi\.servers must be an object of servers by name/],
    [{ servers: { prod: { host: 'x' } } }, /asyncapi\.servers\.prod must be \{ host, protocol \}/],
    [{ id: 42 }, /asyncapi\.id must be a string \(a URI\), got 42/]
  ]
  for (const [asyncapi, message] of cases) {
    t.match(await registerError({ asyncapi }), { code: 'WS_ERR_INVALID_OPTION', message }, JSON.stringify(asyncapi))
  }
})

t.test('`asyncapi` is plugin-level: on a route it is refused', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  t.teardown(() => app.close())
  t.throws(() => app.get('/ws', { websocket: { asyncapi: {} } as any }, () => {}), {
    code: 'WS_ERR_UNKNOWN_OPTION',
    message: /"websocket\.asyncapi": it applies to the whole app; pass it to `register`/
  })
})

t.test('the options of app.websocket.asyncapi() are checked the same way', async (t) => {
  const app = Fastify()
  await app.register(websocket, { asyncapi: { info: { title: 'T' } } })
  await app.ready()
  t.teardown(() => app.close())
  const call = (options: unknown) => () => app.websocket.asyncapi(options as any)
  t.throws(call({ yml: true }), { code: 'WS_ERR_UNKNOWN_OPTION', message: /^app\.websocket\.asyncapi\(\): unknown option "options\.yml": not an option; did you mean `yaml`\?/ })
  t.throws(call({ routePrefix: '/x' }), { code: 'WS_ERR_UNKNOWN_OPTION' }, 'routePrefix belongs to the plugin option')
  t.throws(call({ yaml: 'yes' }), { code: 'WS_ERR_INVALID_OPTION', message: /options\.yaml must be true or false/ })
  t.throws(call(null), { code: 'WS_ERR_INVALID_OPTION', message: /options must be an object, got null/ })
  t.throws(call({ servers: { a: null } }), { code: 'WS_ERR_INVALID_OPTION', message: /options\.servers\.a must be \{ host, protocol \}/ })
  t.equal(app.websocket.asyncapi().info.title, 'T', 'the plugin\'s info is the default')
  t.equal(app.websocket.asyncapi({ yaml: false }).info.title, 'T', 'yaml: false is the object')
  t.match(app.websocket.asyncapi({ yaml: true }), /^asyncapi: "3\.0\.0"\ninfo:\n {2}title: T\n/)
  const { asyncapi } = app.websocket
  t.equal(asyncapi().asyncapi, '3.0.0', 'bound: it works detached from app.websocket')
})
