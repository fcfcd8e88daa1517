// Fastify 5 + this repository's plugin, loaded from its published ES module
// build (dist/esm), which the run builds first when lib/ is newer.

import Fastify from 'fastify'
import { DEFLATE_BROADCAST_ROUTE, DEFLATE_ECHO_ROUTE } from '../lib/compression.mjs'
import { chatMessageSchema, JSON_ROUTE, JSON_UNSUPPORTED } from '../lib/json-message.mjs'
import { PUBLISH_ROUTE, ROOM, ROOM_BROADCAST_ROUTE, Rooms, roomsForNextConnection } from '../lib/rooms.mjs'
import { serve } from './child.mjs'

const MAX_MESSAGE_SIZE = 64 * 1024 * 1024

async function loadPlugin () {
  const module = await import('../../dist/esm/index.js')
  if (typeof module.default !== 'function') throw new Error('dist/esm/index.js has no default export that is a plugin')
  return module.default
}

// Optional routes, each registered only if the plugin accepts it: a plugin
// without JSON schemas or compression yet is still measured on the rest.
const OPTIONAL = {
  json (app) {
    app.get(JSON_ROUTE, {
      websocket: true,
      schema: { message: chatMessageSchema, outgoing: chatMessageSchema }
    }, (conn) => {
      if (typeof conn.sendJson !== 'function') {
        conn.send(JSON_UNSUPPORTED)
        return
      }
      // The plugin's JSON consumer is `onJson`; a 'json' event was the earlier sketch of it.
      if (typeof conn.onJson === 'function') conn.onJson((message) => conn.sendJson(message))
      else conn.on('json', (message) => conn.sendJson(message))
    })
  },
  // permessage-deflate with the plugin's defaults: `compression: true` and nothing else.
  deflate (app) {
    app.get(DEFLATE_ECHO_ROUTE, { websocket: { compression: true, retainRequest: false } }, (conn) => {
      conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
    })
    app.get(DEFLATE_BROADCAST_ROUTE, { websocket: { compression: true } }, (conn) => {
      conn.on('message', (data, isBinary) => app.websocket.broadcast(data, { binary: isBinary }))
    })
  },
  // The room scenarios (bench/lib/rooms.mjs): the plugin's topics, and for
  // comparison the same room kept by the route and sent with broadcast({ clients }).
  topics (app) {
    if (typeof app.websocket.publish !== 'function') throw new Error('app.websocket.publish is not available')
    app.get(PUBLISH_ROUTE, { websocket: { retainRequest: false } }, (conn) => {
      for (const topic of roomsForNextConnection()) conn.subscribe(topic)
      conn.on('message', (data, isBinary) => app.websocket.publish(ROOM, data, { binary: isBinary }))
    })
    const rooms = new Rooms()
    app.get(ROOM_BROADCAST_ROUTE, { websocket: { retainRequest: false } }, (conn) => {
      const names = roomsForNextConnection()
      rooms.join(conn, names)
      conn.on('close', () => rooms.leave(conn, names))
      conn.on('message', (data, isBinary) => app.websocket.broadcast(data, { binary: isBinary, clients: rooms.members(ROOM) }))
    })
  }
}

async function build (plugin, optional) {
  const app = Fastify({ logger: false })
  await app.register(plugin, { maxMessageSize: MAX_MESSAGE_SIZE })
  // A hook on the request path, as the benchmark's specification requires.
  app.addHook('onRequest', async () => {})

  // Plugin defaults (conn.request kept): the idle scenario measures what an app that sets nothing pays.
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
  })

  app.get('/broadcast', { websocket: true }, (conn) => {
    conn.on('message', (data, isBinary) => app.websocket.broadcast(data, { binary: isBinary }))
  })

  for (const name of optional) OPTIONAL[name](app)
  await app.ready()
  return app
}

/** true if the plugin takes this optional route, or why not. */
async function accepts (plugin, name) {
  let app
  try {
    app = await build(plugin, [name])
    return true
  } catch (error) {
    return `the ${name} routes could not be registered: ${error.message.split('\n')[0]}`
  } finally {
    await app?.close()
  }
}

serve(async () => {
  const plugin = await loadPlugin()
  const features = {}
  for (const name of Object.keys(OPTIONAL)) features[name] = await accepts(plugin, name)
  const app = await build(plugin, Object.keys(OPTIONAL).filter((name) => features[name] === true))
  await app.listen({ host: '127.0.0.1', port: 0 })
  features.broadcast = typeof app.websocket?.broadcast === 'function'
    ? true
    : 'app.websocket.broadcast is not available'
  return { port: app.server.address().port, features }
})
