// Serving the document (`asyncapi: { routePrefix }`): the JSON, the YAML and
// the page, what they are sent with, and that the page escapes what comes
// from the schemas. Then next to @fastify/swagger: WebSocket-only routes stay
// out of OpenAPI, a route with both handlers is in both documents, each
// describing its own side, and the serving routes are in neither.
import { createRequire } from 'node:module'
import swagger from '@fastify/swagger'
import Fastify from 'fastify'
import t from 'tap'
import websocket from '../../lib/index.js'
import { buildKitchenSink } from './fixtures/kitchen-sink.js'
import { validate } from './fixtures/validate.js'

const jsyaml = createRequire(require.resolve('@asyncapi/parser'))('js-yaml') as { load (text: string): unknown }

t.test('JSON, YAML and the page under routePrefix', async (t) => {
  const app = await buildKitchenSink({ asyncapi: { routePrefix: '/docs/asyncapi/' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const json = await fetch(`${base}/docs/asyncapi/json`)
  t.equal(json.status, 200)
  t.equal(json.headers.get('content-type'), 'application/json; charset=utf-8')
  const served = await json.json() as { servers: unknown }
  t.same(served, JSON.parse(JSON.stringify(app.websocket.asyncapi())), 'the document app.websocket.asyncapi() builds (the trailing slash of the prefix dropped)')
  t.same(served.servers, { default: { host: base.slice('http://'.length), protocol: 'ws' } }, 'with the listening address as its server')

  const yaml = await fetch(`${base}/docs/asyncapi/yaml`)
  t.equal(yaml.status, 200)
  t.equal(yaml.headers.get('content-type'), 'application/yaml; charset=utf-8')
  const yamlText = await yaml.text()
  t.same(jsyaml.load(yamlText), served, 'the YAML is the same document')
  t.same(await validate(yamlText), { errors: [], warnings: [] }, 'valid for the official parser')

  const page = await fetch(`${base}/docs/asyncapi`)
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  t.equal(page.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'the page may load nothing and run no script')
  const html = await page.text()
  t.notMatch(html, /<script|https?:\/\/(?!127\.0\.0\.1|example\.com)/, 'no script, no URL of anywhere else')
  t.match(html, 'href="/docs/asyncapi/json"')
  t.match(html, 'href="/docs/asyncapi/yaml"')
  for (const address of ['/rooms/{room}', '/shop/{shop}/orders/{order}', '/local', '/files/{wildcard}', '/feed/{id}', '/v2/ping']) {
    t.match(html, `<code>${address}</code>`, `the page has ${address}`)
  }
  t.match(html, 'Talk in a room: &#60;b&#62;bold&#60;/b&#62; &#38; &#34;quoted&#34;', 'text from the schemas is escaped')
  t.notMatch(html, '<b>bold</b>')
  t.match(html, '<a class="ref" href="#schema-Join"><code>Join</code></a>', 'references link to the schema on the page')
  t.match(html, 'id="schema-Join"')
  t.match(html, 'Example (generated from the schema)', 'messages without examples get one made up')

  const head = await fetch(`${base}/docs/asyncapi/json`, { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD too (Fastify\'s exposeHeadRoutes)')
})

t.test('what the page shows of a hostile schema is text', async (t) => {
  const app = Fastify()
  await app.register(websocket, { asyncapi: { routePrefix: '/asyncapi', info: { title: '</title><script>alert(1)</script>', version: '"><img src=x onerror=alert(1)>' } } })
  app.get('/x', {
    websocket: true,
    schema: {
      summary: '<script>alert(2)</script>',
      tags: ['<i>tag</i>'],
      message: {
        anyOf: [
          { type: 'object', properties: { t: { const: '<svg onload=alert(3)>' }, "a'b": { type: 'string', description: '"quotes" & \'apostrophes\'' } }, required: ['t'] },
          { type: 'object', properties: { t: { const: 'b' } }, required: ['t'], examples: [{ t: 'b', html: '</pre><script>alert(4)</script>' }] }
        ]
      }
    }
  }, () => {})
  t.teardown(() => app.close())
  const html = (await app.inject('/asyncapi')).body
  t.notMatch(html, /<script|<img|<svg|<i>/, 'no markup from the document')
  t.match(html, '&#60;/title&#62;&#60;script&#62;alert(1)&#60;/script&#62;')
  t.match(html, '&#60;svg onload=alert(3)&#62;')
  t.match(html, '&#34;quotes&#34; &#38; &#39;apostrophes&#39;')
  t.match(html, '&#60;/pre&#62;&#60;script&#62;alert(4)&#60;/script&#62;')
  t.same(await validate(JSON.parse((await app.inject('/asyncapi/json')).body)), { errors: [], warnings: [] }, 'and the document is still valid')
})

t.test('next to @fastify/swagger: each document describes its own side', async (t) => {
  const app = Fastify()
  await app.register(swagger, { openapi: { info: { title: 'REST', version: '1.0.0' } } })
  await app.register(websocket, { asyncapi: { routePrefix: '/asyncapi' } })
  const query = { type: 'object', properties: { since: { type: 'string' } } } as const
  app.get('/api/items', { schema: { querystring: query, response: { 200: { type: 'array' } } } }, async () => [])
  app.get('/ws-only', { websocket: true, schema: { querystring: query, message: { type: 'string' } } }, () => {})
  app.route({
    method: 'GET',
    url: '/both',
    schema: { summary: 'Both sides', querystring: query, response: { 200: { type: 'object' } }, message: { type: 'object', title: 'Hello' }, outgoing: { type: 'object', title: 'Welcome' } },
    handler: async () => ({}),
    wsHandler: () => {}
  })
  app.route({ method: 'GET', url: '/hidden-both', schema: { hide: true }, handler: async () => ({}), wsHandler: () => {} })
  await app.ready()
  t.teardown(() => app.close())

  const openapi = app.swagger() as { paths: Record<string, { get: Record<string, unknown> }> }
  t.same(Object.keys(openapi.paths).sort(), ['/api/items', '/both'],
    'OpenAPI: the REST route and the HTTP side of /both; not the WebSocket-only route, not the AsyncAPI routes, not a hidden route')
  const both = openapi.paths['/both'].get
  t.equal(both.summary, 'Both sides')
  t.match(both.parameters, [{ in: 'query', name: 'since' }], 'its querystring')
  t.notMatch(JSON.stringify(both), /Hello|Welcome/, 'none of its messages: those are the WebSocket side')

  const asyncapi = app.websocket.asyncapi()
  t.same(Object.values(asyncapi.channels).map((c) => c.address), ['/ws-only', '/both'], 'AsyncAPI: the WebSocket routes, not the REST one, not the hidden one')
  t.equal(asyncapi.channels.both.summary, 'Both sides')
  t.same(Object.keys(asyncapi.channels.both.messages!), ['Hello', 'Welcome'], 'the WebSocket side of /both: its messages')
  t.same(asyncapi.channels.both.bindings!.ws.query, query, 'and the querystring of its handshake')
  t.same(await validate(asyncapi), { errors: [], warnings: [] })
})
