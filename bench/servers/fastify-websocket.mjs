// Fastify 5 + @fastify/websocket 11 (ws underneath).

import websocket from '@fastify/websocket'
import Ajv from 'ajv'
import Fastify from 'fastify'
import { DEFLATE_BROADCAST_ROUTE, DEFLATE_ECHO_ROUTE, wsPerMessageDeflate } from '../lib/compression.mjs'
import { chatMessageSchema, JSON_ROUTE } from '../lib/json-message.mjs'
import { PUBLISH_ROUTE, ROOM, ROOM_BROADCAST_ROUTE, Rooms, roomsForNextConnection } from '../lib/rooms.mjs'
import { serve } from './child.mjs'

const OPEN = 1

serve(async () => {
  const validate = new Ajv().compile(chatMessageSchema)
  const app = Fastify({ logger: false })
  // ws's permessage-deflate, as on the bare ws server; only clients that
  // offer it (the compression scenarios) get it.
  await app.register(websocket, { options: { perMessageDeflate: wsPerMessageDeflate() } })
  // The same no-op hook the rfc6455 server has, so the handshake path costs the same.
  app.addHook('onRequest', async () => {})

  const echo = (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
  }
  const broadcast = (socket) => {
    socket.on('message', (data, isBinary) => {
      for (const client of app.websocketServer.clients) {
        if (client.readyState === OPEN) client.send(data, { binary: isBinary })
      }
    })
  }
  app.get('/echo', { websocket: true }, echo)
  app.get('/broadcast', { websocket: true }, broadcast)
  app.get(DEFLATE_ECHO_ROUTE, { websocket: true }, echo)
  app.get(DEFLATE_BROADCAST_ROUTE, { websocket: true }, broadcast)

  // Rooms as ws users write them (@fastify/websocket has no topics): both room routes are this loop.
  const rooms = new Rooms()
  const room = (socket) => {
    const names = roomsForNextConnection()
    rooms.join(socket, names)
    socket.on('close', () => rooms.leave(socket, names))
    socket.on('message', (data, isBinary) => {
      for (const client of rooms.members(ROOM)) {
        if (client.readyState === OPEN) client.send(data, { binary: isBinary })
      }
    })
  }
  app.get(PUBLISH_ROUTE, { websocket: true }, room)
  app.get(ROOM_BROADCAST_ROUTE, { websocket: true }, room)

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
  return { port: app.server.address().port, features: { broadcast: true, json: true, deflate: true, topics: true } }
})
