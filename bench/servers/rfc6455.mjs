// Fastify 5 + this repository's plugin, loaded from its published ES module
// build (dist/esm), which the run builds first when lib/ is newer.

import Fastify from 'fastify'
import { chatMessageSchema, JSON_ROUTE, JSON_UNSUPPORTED } from '../lib/json-message.mjs'
import { serve } from './child.mjs'

const MAX_MESSAGE_SIZE = 64 * 1024 * 1024

async function loadPlugin () {
  const module = await import('../../dist/esm/index.js')
  if (typeof module.default !== 'function') throw new Error('dist/esm/index.js has no default export that is a plugin')
  return module.default
}

async function build (plugin, withJsonRoute) {
  const app = Fastify({ logger: false })
  await app.register(plugin, { maxMessageSize: MAX_MESSAGE_SIZE })
  // A hook on the request path, as the benchmark's specification requires.
  app.addHook('onRequest', async () => {})

  // The echo handler needs nothing from the request after the upgrade.
  app.get('/echo', { websocket: { retainRequest: false } }, (conn) => {
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
  })

  app.get('/broadcast', { websocket: true }, (conn) => {
    conn.on('message', (data, isBinary) => app.websocket.broadcast(data, { binary: isBinary }))
  })

  if (withJsonRoute) {
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
  }

  await app.listen({ host: '127.0.0.1', port: 0 })
  return app
}

serve(async () => {
  const plugin = await loadPlugin()
  let app
  let json = true
  try {
    app = await build(plugin, true)
  } catch (error) {
    // A plugin without JSON schemas yet may reject the route: measure the rest.
    json = `the JSON route could not be registered: ${error.message}`
    app = await build(plugin, false)
  }
  const broadcast = typeof app.websocket?.broadcast === 'function'
    ? true
    : 'app.websocket.broadcast is not available'
  return { port: app.server.address().port, features: { broadcast, json } }
})
