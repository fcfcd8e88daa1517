import { once } from 'node:events'
import type { FastifySchema, RouteOptions } from 'fastify'
import t from 'tap'
import { build } from '../helpers/app.js'

type Schema = { hide?: boolean, [key: string]: unknown } | undefined

// The schema's own keys: Fastify marks the objects it has normalized with a symbol.
function keysOf (schema: Schema): Record<string, unknown> | undefined {
  return schema === undefined ? undefined : Object.fromEntries(Object.entries(schema))
}

t.test('a WebSocket-only route has schema.hide, so a hook destructuring it works (@fastify/websocket\'s hooks test)', async (t) => {
  const app = await build(t)
  const seen: unknown[] = []
  await app.register(async (scope) => {
    scope.addHook('onRequest', async ({ routeOptions: { schema: { hide } } }: any) => { seen.push(hide) })
    scope.get('/echo', { websocket: true }, (conn) => { conn.send('hello') })
  })
  const client = await app.injectWS('/echo')
  const [message] = await new Promise<[Buffer, boolean]>((resolve) => client.once('message', (...args) => resolve(args)))
  t.equal(message.toString(), 'hello', 'the upgrade went through the hook')
  t.same(seen, [true])
  client.terminate()
})

t.test('which routes are hidden from docs (@fastify/swagger reads schema.hide)', async (t) => {
  const app = await build(t)
  const schemas = new Map<string, Schema>()
  app.addHook('onRoute', (route: RouteOptions) => { schemas.set(`${String(route.method)} ${route.url}`, keysOf(route.schema as Schema)) })
  const shared = { querystring: { type: 'object', properties: { room: { type: 'string' } } } }
  app.get('/ws-only', { websocket: true }, () => {})
  app.get('/ws-settings', { websocket: { maxMessageSize: 10 }, schema: shared }, () => {})
  app.get('/http', { schema: shared }, async () => 'plain')
  app.get('/shown', { websocket: true, schema: { hide: false } as FastifySchema }, () => {})
  app.route({ method: 'GET', url: '/both', handler: async () => 'http', wsHandler: () => {} })
  await app.ready()

  t.same(schemas.get('GET /ws-only'), { hide: true }, 'a schema is created for a route without one')
  t.same(schemas.get('HEAD /ws-only'), { hide: true }, 'the HEAD twin too')
  t.same(schemas.get('GET /ws-settings'), { querystring: shared.querystring, hide: true }, 'the route\'s own schema is kept beside hide')
  t.same(schemas.get('GET /http'), { querystring: shared.querystring }, 'an HTTP route sharing that schema object is not hidden')
  t.notOk('hide' in shared, 'the app\'s schema object is not modified')
  t.same(schemas.get('GET /shown'), { hide: false }, 'an explicit hide is kept')
  t.equal(schemas.get('GET /both'), undefined, 'a route with an HTTP handler is documented as before')
  const res = await app.inject({ url: '/ws-settings?room=a' })
  t.equal(res.statusCode, 426, 'the hidden route still serves (and validates) plain GET as before')
})

t.test('WebSocket routes are GET routes: another method is refused when the route is added; GET, HEAD and both serve', async (t) => {
  const app = await build(t)
  const refused = { code: 'WS_ERR_INVALID_ROUTE', message: 'websocket handler can only be declared in GET method' }
  t.throws(() => app.post('/a', { websocket: true }, () => {}), refused, 'post with websocket: true')
  t.throws(() => app.post('/b', { websocket: { maxMessageSize: 5 } }, () => {}), refused, 'post with settings')
  t.throws(() => app.route({ method: ['GET', 'POST'], url: '/c', websocket: true, handler: () => {} } as any), refused, 'an array with POST')
  t.throws(() => app.route({ method: 'PUT', url: '/d', handler: async () => 'http', wsHandler: () => {} }), refused, 'wsHandler on PUT')

  app.route({ method: ['GET', 'HEAD'], url: '/both', websocket: true, handler: (conn: { send: (data: string) => void }) => { conn.send('both') } } as any)
  app.route({ method: 'HEAD', url: '/head', websocket: true, handler: () => {} } as any)
  app.get('/get', { websocket: true }, (conn) => { conn.send('get') })
  for (const path of ['/both', '/get']) {
    const client = await app.injectWS(path)
    const [message] = await once(client, 'message') as [Buffer]
    t.equal(message.toString(), path.slice(1))
    client.terminate()
  }
  t.equal((await app.inject({ method: 'HEAD', url: '/get' })).statusCode, 426, 'the HEAD twin of a GET route answers as the GET route does')
})

t.test('a wsHandler that is not a function is refused when the route is added', async (t) => {
  const app = await build(t)
  t.throws(() => app.route({ method: 'GET', url: '/a', handler: async () => 'http', wsHandler: 'hello' as any }), {
    code: 'WS_ERR_INVALID_ROUTE',
    message: 'invalid wsHandler function'
  })
})
