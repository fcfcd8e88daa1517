// Fastify 5 + @fastify/websocket 11 (ws underneath).

import websocket from '@fastify/websocket'
import Ajv from 'ajv'
import Fastify from 'fastify'
import { chatMessageSchema, JSON_ROUTE } from '../lib/json-message.mjs'
import { serve } from './child.mjs'

const OPEN = 1

serve(async () => {
  const validate = new Ajv().compile(chatMessageSchema)
  const app = Fastify({ logger: false })
  await app.register(websocket)
  // The same no-op hook the rfc6455 server has, so the handshake path costs the same.
  app.addHook('onRequest', async () => {})

  app.get('/echo', { websocket: true }, (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  })

  app.get('/broadcast', { websocket: true }, (socket) => {
    socket.on('message', (data, isBinary) => {
      for (const client of app.websocketServer.clients) {
        if (client.readyState === OPEN) client.send(data, { binary: isBinary })
      }
    })
  })

  app.get(JSON_ROUTE, { websocket: true }, (socket) => {
    socket.on('message', (data) => {
      let message
      try {
        message = JSON.parse(data.toString())
      } catch {
        socket.close(1007, 'invalid JSON')
        return
      }
      if (!validate(message)) {
        socket.close(1008, 'invalid message')
        return
      }
      socket.send(JSON.stringify(message))
    })
  })

  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port, features: { broadcast: true, json: true } }
})
