// Bare ws (bufferutil is installed, so ws masks and unmasks with it).

import { once } from 'node:events'
import Ajv from 'ajv'
import { WebSocket, WebSocketServer } from 'ws'
import { DEFLATE_BROADCAST_ROUTE, wsPerMessageDeflate } from '../lib/compression.mjs'
import { chatMessageSchema, JSON_ROUTE } from '../lib/json-message.mjs'
import { PUBLISH_ROUTE, ROOM, ROOM_BROADCAST_ROUTE, Rooms, roomsForNextConnection } from '../lib/rooms.mjs'
import { serve } from './child.mjs'

serve(async () => {
  const validate = new Ajv().compile(chatMessageSchema)
  // permessage-deflate is accepted only from clients that offer it: the
  // compression scenarios' (bench/lib/compression.mjs says how it is set).
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: wsPerMessageDeflate() })
  const rooms = new Rooms()

  wss.on('connection', (ws, request) => {
    if (request.url === '/broadcast' || request.url === DEFLATE_BROADCAST_ROUTE) {
      ws.on('message', (data, isBinary) => {
        for (const client of wss.clients) {
          if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary })
        }
      })
    } else if (request.url === PUBLISH_ROUTE || request.url === ROOM_BROADCAST_ROUTE) {
      // Rooms as ws users write them (ws has no topics): both room routes are this loop.
      const names = roomsForNextConnection()
      rooms.join(ws, names)
      ws.on('close', () => rooms.leave(ws, names))
      ws.on('message', (data, isBinary) => {
        for (const client of rooms.members(ROOM)) {
          if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary })
        }
      })
    } else if (request.url === JSON_ROUTE) {
      ws.on('message', (data) => {
        let message
        try {
          message = JSON.parse(data.toString())
        } catch {
          ws.close(1007, 'invalid JSON')
          return
        }
        if (!validate(message)) {
          ws.close(1008, 'invalid message')
          return
        }
        ws.send(JSON.stringify(message))
      })
    } else {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
    }
  })

  await once(wss, 'listening')
  return { port: wss.address().port, features: { broadcast: true, json: true, deflate: true, topics: true } }
})
