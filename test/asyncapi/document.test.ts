// The AsyncAPI document of the kitchen-sink app (fixtures/kitchen-sink.ts):
// valid for the official parser (no errors, no warnings), as JSON and as
// YAML; then, without snapshots, what each route became: channels,
// parameters, bindings, operations, messages and components.
import { createRequire } from 'node:module'
import t from 'tap'
import Fastify from 'fastify'
import websocket, { type AsyncApiDocument } from '../../lib/index.js'
import { buildKitchenSink, ROOM_ID } from './fixtures/kitchen-sink.js'
import { validate } from './fixtures/validate.js'

const jsyaml = createRequire(require.resolve('@asyncapi/parser'))('js-yaml') as { load (text: string): unknown }

async function main (): Promise<void> {
  const app = await buildKitchenSink()
  await app.ready()
  t.teardown(() => app.close())
  const doc = app.websocket.asyncapi()

  await t.test('the official parser finds no errors and no warnings, in JSON and in YAML', async (t) => {
    t.same(await validate(doc), { errors: [], warnings: [] }, 'the document object')
    const yaml = app.websocket.asyncapi({ yaml: true })
    t.type(yaml, 'string')
    t.same(await validate(yaml), { errors: [], warnings: [] }, 'the YAML text')
    t.same(jsyaml.load(yaml), JSON.parse(JSON.stringify(doc)), 'the YAML reads back as the same document (js-yaml, the parser\'s own reader)')
  })

  await t.test('one channel per documented WebSocket route, in declaration order', async (t) => {
    t.equal(doc.asyncapi, '3.0.0')
    t.same(doc.info, { title: 'WebSocket API', version: '1.0.0' }, 'default info')
    t.equal(doc.defaultContentType, 'application/json')
    t.same(Object.entries(doc.channels).map(([id, c]) => [id, c.address]), [
      ['rooms_room', '/rooms/{room}'],
      ['shop_shop_orders_order', '/shop/{shop}/orders/{order}'],
      ['local', '/local'],
      ['files_wildcard', '/files/{wildcard}'],
      ['feed_id', '/feed/{id}'],
      ['v2_ping', '/v2/ping']
    ], 'not /hidden (hide: true), not the REST route; the prefix of an encapsulated route is in its address')
    t.equal(doc.servers, undefined, 'no servers before the app listens')
  })

  await t.test('route schema: summary, description, tags, deprecated', async (t) => {
    const rooms = doc.channels.rooms_room
    t.equal(rooms.summary, 'One room')
    t.equal(rooms.description, 'Talk in a room: <b>bold</b> & "quoted"')
    t.same(rooms.tags, [{ name: 'chat' }, { name: 'rooms' }])
    t.same(doc.operations['rooms_room.receive'].tags, [{ name: 'chat' }, { name: 'rooms' }], 'operations carry the tags too')
    t.equal(doc.channels.local['x-deprecated'], true, 'a deprecated route: its channel')
    t.equal(doc.operations['local.receive']['x-deprecated'], true, 'its operations')
    t.equal(doc.channels.local.messages!.message.deprecated, true, 'and its messages (the one place AsyncAPI 3.0 has the field)')
    t.notOk('x-deprecated' in rooms, 'others are not')
  })

  await t.test('parameters from the params schema, as strings', async (t) => {
    t.same(doc.channels.rooms_room.parameters, { room: { description: 'a room name', examples: ['kitchen'] } }, 'through a $ref to a shared schema')
    t.same(doc.channels.shop_shop_orders_order.parameters, {
      shop: { description: 'which shop', enum: ['north', 'south'] },
      order: { examples: ['42'] }
    })
    t.same(Object.keys(doc.channels.feed_id.parameters!), ['id'], 'a regex parameter: its name only, the regex is not part of the address')
    t.same(Object.keys(doc.channels.files_wildcard.parameters!), ['wildcard'], 'the wildcard gets a parameter too')
    t.equal(doc.channels.local.parameters, undefined, 'no placeholders, no parameters')
  })

  await t.test('bindings.ws: the handshake\'s query and headers schemas, the subprotocols', async (t) => {
    const ws = doc.channels.rooms_room.bindings!.ws
    t.equal(ws.method, 'GET')
    t.equal(ws.bindingVersion, '0.1.0')
    t.same(ws.query, { type: 'object', properties: { name: { type: 'string' }, limit: { type: 'integer', default: 10 } }, required: ['name'] })
    t.same(ws.headers, { type: 'object', properties: { authorization: { type: 'string', pattern: '^Bearer ' } }, required: ['authorization'] })
    t.same(ws['x-subprotocols'], ['chat.v2', 'chat.v1'], 'the plugin-level protocols')
    t.same(doc.channels.shop_shop_orders_order.bindings!.ws['x-subprotocols'], ['orders.v1'], 'a route\'s own')
    t.same(doc.channels.feed_id.bindings!.ws.query, { type: 'object', properties: { since: { type: 'string', format: 'date-time' } } },
      'an HTTP+WebSocket route: its querystring applies to the handshake too')
  })

  await t.test('a receive operation from schema.message, a send operation from schema.outgoing', async (t) => {
    const ops = Object.entries(doc.operations).map(([id, op]) => [id, op.action, op.channel.$ref])
    t.same(ops, [
      ['rooms_room.receive', 'receive', '#/channels/rooms_room'],
      ['rooms_room.send', 'send', '#/channels/rooms_room'],
      ['shop_shop_orders_order.receive', 'receive', '#/channels/shop_shop_orders_order'],
      ['shop_shop_orders_order.send', 'send', '#/channels/shop_shop_orders_order'],
      ['local.receive', 'receive', '#/channels/local'],
      ['feed_id.send', 'send', '#/channels/feed_id'],
      ['v2_ping.receive', 'receive', '#/channels/v2_ping'],
      ['v2_ping.send', 'send', '#/channels/v2_ping']
    ], 'no operation where there is no schema (/files/*: no messages at all)')
    t.equal(doc.channels.files_wildcard.messages, undefined)
    for (const [id, op] of Object.entries(doc.operations)) {
      const channel = op.channel.$ref.slice('#/channels/'.length)
      for (const { $ref } of op.messages) {
        t.ok($ref.startsWith(`#/channels/${channel}/messages/`), `${id}: ${$ref} is a message of its own channel`)
        t.ok(doc.channels[channel].messages![$ref.slice($ref.lastIndexOf('/') + 1)], `${id}: ${$ref} exists`)
      }
    }
  })

  await t.test('discriminated unions: one message per variant, named after its tag', async (t) => {
    const messages = (id: string) => doc.operations[id].messages.map(({ $ref }) => {
      const m = doc.channels[$ref.split('/')[2]].messages![$ref.split('/')[4]]
      return [$ref.split('/')[4], m.name, m.summary]
    })
    t.same(messages('rooms_room.receive'), [['join', 'join', 'type: "join"'], ['say', 'say', 'type: "say"']], 'string tags, the variants being $refs to shared schemas')
    t.same(messages('rooms_room.send'), [['1', '1', 'v: 1'], ['2', '2', 'v: 2'], ['3', '3', 'v: 3']], 'numeric tags')
    t.same(messages('shop_shop_orders_order.receive'), [['cancel', 'cancel', 'kind: "cancel"'], ['error.received', 'error', 'kind: "error"']],
      'a tag used both ways: the keys tell the sides apart, the names stay the tag')
    t.same(messages('shop_shop_orders_order.send'), [['status', 'status', 'kind: "status"'], ['error.sent', 'error', 'kind: "error"']])
    const rooms = doc.channels.rooms_room.messages!
    t.same(rooms.join.payload, { $ref: '#/components/schemas/Join' }, 'a shared variant is referenced, not inlined')
    t.equal(rooms.join.title, 'Join a room', 'its title')
    t.equal(rooms.say.description, 'Say something', 'its description')
    t.same(rooms.say.examples, [{ payload: { type: 'say', text: 'hello' } }], 'its JSON Schema examples, as message examples')
    t.same(rooms['3'].payload, {
      type: 'object', properties: { v: { const: 3 }, user: { $ref: '#/components/schemas/user' } }, required: ['v', 'user']
    }, 'an inline variant is written inline, its $refs rewritten')
    t.same(doc.channels.feed_id.messages, {
      Tick: { name: 'Tick', title: 'Tick', payload: { type: 'object', title: 'Tick', properties: { at: { type: 'string', format: 'date-time' } } } }
    }, 'a schema that is no union: one message, named by its title')
    t.same(Object.keys(doc.channels.v2_ping.messages!), ['Ping.received', 'Ping.sent'], 'or by the shared schema it refers to')
  })

  await t.test('shared schemas: in components.schemas once, referenced by pointer', async (t) => {
    const schemas = doc.components!.schemas!
    t.same(Object.keys(schemas).sort(), ['Join', 'Ping', 'Say', 'author', 'local.message', 'room', 'user'],
      'those the routes reach, directly or through one another (not Unused); the child context\'s Ping too')
    t.same(schemas.Join, { type: 'object', title: 'Join a room', properties: { type: { const: 'join' }, room: { $ref: '#/components/schemas/room' } }, required: ['type', 'room'] },
      `'${ROOM_ID}#' became a pointer; $id is gone`)
    t.same((schemas.author as any).properties.room, { $ref: '#/components/schemas/room' }, 'a relative $ref (room.json) resolved against its schema\'s $id')
    t.same((schemas.Say as any).properties.by, { $ref: '#/components/schemas/author' })
    const text = JSON.stringify(doc)
    t.notMatch(text, /"\$id"/, 'no $id anywhere')
    for (const ref of text.match(/"\$ref":"[^"]*"/g) ?? []) t.match(ref, /"\$ref":"#\//, `${ref} points into the document`)
  })

  await t.test('a schema with local references moves into components, its pointers with it', async (t) => {
    t.same(doc.channels.local.messages!.message.payload, { $ref: '#/components/schemas/local.message' })
    t.same(doc.components!.schemas!['local.message'], {
      definitions: { n: { type: 'integer', minimum: 1 } },
      type: 'object',
      properties: { n: { $ref: '#/components/schemas/local.message/definitions/n' }, more: { type: 'array', items: { $ref: '#/components/schemas/local.message/definitions/n' } } }
    })
  })

  await t.test('info, servers and id: from the options, the plugin\'s then the call\'s', async (t) => {
    const sink = await buildKitchenSink({ asyncapi: { info: { title: 'Kitchen', version: '2.0.0', description: 'All of it' }, id: 'urn:example:kitchen' } })
    t.teardown(() => sink.close())
    await sink.listen({ host: '127.0.0.1', port: 0 })
    const { port } = sink.server.address() as { port: number }
    const listened = sink.websocket.asyncapi()
    t.same(listened.info, { title: 'Kitchen', version: '2.0.0', description: 'All of it' })
    t.equal(listened.id, 'urn:example:kitchen')
    t.same(listened.servers, { default: { host: `127.0.0.1:${port}`, protocol: 'ws' } }, 'the listening address, once listening')
    const called = sink.websocket.asyncapi({ info: { version: '3.0.0' }, servers: { production: { host: 'chat.example.com', protocol: 'wss' } } })
    t.same(called.info, { title: 'Kitchen', version: '3.0.0', description: 'All of it' }, 'info merged key by key')
    t.same(called.servers, { production: { host: 'chat.example.com', protocol: 'wss' } }, 'servers given replace the default')
    t.same(await validate(called), { errors: [], warnings: [] })
  })

  await t.test('an app without WebSocket routes has an empty but valid document', async (t) => {
    const empty = Fastify()
    await empty.register(websocket)
    empty.get('/', async () => 'hi')
    await empty.ready()
    t.teardown(() => empty.close())
    const document: AsyncApiDocument = empty.websocket.asyncapi()
    t.same(document.channels, {})
    t.same(document.operations, {})
    t.equal(document.components, undefined)
    t.same(await validate(document), { errors: [], warnings: [] })
  })

}

main().catch((err) => t.threw(err))
