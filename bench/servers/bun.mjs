// Reference server: Bun's own WebSocket server, Bun.serve({ websocket }),
// written as Bun's documentation writes it. Run by the Bun binary (see
// bench/lib/servers.mjs), which speaks Node's IPC channel, so child.mjs's
// serve() works unchanged.

import Ajv from 'ajv'
import { chatMessageSchema, JSON_ROUTE } from '../lib/json-message.mjs'
import { PUBLISH_ROUTE, ROOM, ROOM_BROADCAST_ROUTE, Rooms, roomsForNextConnection } from '../lib/rooms.mjs'
import { serve } from './child.mjs'

// As the rfc6455 server's maxMessageSize: every server takes the same sizes,
// and the 1 MiB echo fits with room to spare (Bun's default is 16 MiB).
const MAX_MESSAGE_SIZE = 64 * 1024 * 1024
// Past this many bytes queued on a connection Bun drops what is sent. The
// generator's own flow control never queues more than 2 MiB on one (the
// 1 MiB echo, 2 in flight), so this only guarantees that nothing is dropped.
const BACKPRESSURE_LIMIT = 64 * 1024 * 1024
// Bun has no list of its connections: broadcasting to all of them is a
// publish to a topic every /broadcast connection subscribes to, as Bun's
// documentation does it.
const EVERYONE = 'everyone'

serve(async () => {
  const validate = new Ajv().compile(chatMessageSchema)
  const rooms = new Rooms()
  let server

  // One Bun.serve has one websocket handler: each route's behaviour travels
  // with the connection, in ws.data, from the upgrade.
  const routes = {
    // Text arrives as a string and binary as a Buffer; send() keeps the type.
    '/echo': { message: (ws, message) => ws.send(message) },
    '/broadcast': {
      open: (ws) => ws.subscribe(EVERYONE),
      // server.publish reaches the sender too (ws.publish would skip it).
      message: (ws, message) => server.publish(EVERYONE, message)
    },
    // Bun's topics.
    [PUBLISH_ROUTE]: {
      open (ws) {
        for (const topic of roomsForNextConnection()) ws.subscribe(topic)
      },
      message: (ws, message) => server.publish(ROOM, message)
    },
    // The rooms kept by the application, as ws's users keep them, and a send loop.
    [ROOM_BROADCAST_ROUTE]: {
      open (ws) {
        ws.data.rooms = roomsForNextConnection()
        rooms.join(ws, ws.data.rooms)
      },
      close: (ws) => rooms.leave(ws, ws.data.rooms),
      message (ws, message) {
        for (const client of rooms.members(ROOM)) client.send(message)
      }
    },
    [JSON_ROUTE]: {
      message (ws, message) {
        let parsed
        try {
          parsed = JSON.parse(message)
        } catch {
          ws.close(1007, 'invalid JSON')
          return
        }
        if (!validate(parsed)) {
          ws.close(1008, 'invalid message')
          return
        }
        ws.send(JSON.stringify(parsed))
      }
    }
  }

  server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch (request, server) {
      const route = routes[new URL(request.url).pathname]
      if (route === undefined) return new Response('not found', { status: 404 })
      if (server.upgrade(request, { data: { route } })) return undefined
      return new Response('expected a WebSocket upgrade', { status: 426 })
    },
    websocket: {
      maxPayloadLength: MAX_MESSAGE_SIZE,
      backpressureLimit: BACKPRESSURE_LIMIT,
      // The idle scenario's connections say nothing for as long as it takes
      // to read memory: no timeout (Bun's default closes them after 120 s),
      // and so no pings, which the broadcast scenarios would have to skip.
      idleTimeout: 0,
      sendPings: false,
      // Bun's default; the compression scenarios are n/a here.
      perMessageDeflate: false,
      open: (ws) => ws.data.route.open?.(ws),
      message: (ws, message) => ws.data.route.message(ws, message),
      close: (ws) => ws.data.route.close?.(ws)
    }
  })

  return {
    port: server.port,
    features: {
      broadcast: true,
      json: true,
      topics: true,
      deflate: 'permessage-deflate is not set up on the reference servers'
    }
  }
})
