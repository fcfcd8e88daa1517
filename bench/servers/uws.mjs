// Reference server: uWebSockets.js v20.30 on Node.js, from the npm package
// @trufflesuite/uws-js-unofficial (bench/README.md says why that build).

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import Ajv from 'ajv'
import { chatMessageSchema, JSON_ROUTE } from '../lib/json-message.mjs'
import { PUBLISH_ROUTE, ROOM, ROOM_BROADCAST_ROUTE, Rooms, roomsForNextConnection } from '../lib/rooms.mjs'
import { serve } from './child.mjs'

const PACKAGE = '@trufflesuite/uws-js-unofficial'
// As the rfc6455 server's maxMessageSize: every server takes the same sizes,
// and the 1 MiB echo fits (uWS's default is 16 KiB).
const MAX_MESSAGE_SIZE = 64 * 1024 * 1024
// Past this many bytes queued on a connection uWS drops what is sent (its
// default, 64 KiB, would drop the 1 MiB echo). The generator's flow control
// never queues more than 2 MiB on one, so this only guarantees nothing is dropped.
const MAX_BACKPRESSURE = 64 * 1024 * 1024
// uWS has no list of its connections: broadcasting to all of them is a
// publish to a topic every /broadcast connection subscribes to, as uWS's
// examples do it.
const EVERYONE = 'everyone'

/**
 * The native addon itself. The package's own entry point, when the addon
 * does not load (another Node.js ABI), falls back to an imitation of uWS
 * written on ws: measuring that under this name would be wrong, so the
 * server refuses to start instead, saying why.
 */
function loadUws () {
  const require = createRequire(import.meta.url)
  const root = dirname(require.resolve(`${PACKAGE}/package.json`))
  const { version } = require(`${PACKAGE}/package.json`)
  const name = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
  const binary = join(root, 'binaries', name)
  if (!existsSync(binary)) {
    throw new Error(`${PACKAGE}@${version} has no ${name}: its binaries are for Node.js ABI 93, 108 and 115 ` +
      `(Node.js 16, 18, 20), and this is Node.js ${process.version} (ABI ${process.versions.modules}) on ${process.platform}-${process.arch}`)
  }
  return require(binary)
}

serve(async () => {
  const uWS = loadUws()
  const validate = new Ajv().compile(chatMessageSchema)
  const rooms = new Rooms()
  const app = uWS.App()
  const settings = {
    maxPayloadLength: MAX_MESSAGE_SIZE,
    maxBackpressure: MAX_BACKPRESSURE,
    // The idle scenario's connections say nothing for as long as it takes to
    // read memory: no timeout (uWS's default closes them after 120 s), and
    // so no pings, which the broadcast scenarios would have to skip.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    // uWS's default; the compression scenarios are n/a here.
    compression: uWS.DISABLED
  }

  // Messages arrive as ArrayBuffers, text or binary as isBinary says; send
  // and publish copy them before the handler returns.
  app.ws('/echo', { ...settings, message: (ws, message, isBinary) => ws.send(message, isBinary) })
  app.ws('/broadcast', {
    ...settings,
    open: (ws) => ws.subscribe(EVERYONE),
    // app.publish reaches the sender too (ws.publish would skip it).
    message: (ws, message, isBinary) => app.publish(EVERYONE, message, isBinary)
  })
  // uWS's topics.
  app.ws(PUBLISH_ROUTE, {
    ...settings,
    open (ws) {
      for (const topic of roomsForNextConnection()) ws.subscribe(topic)
    },
    message: (ws, message, isBinary) => app.publish(ROOM, message, isBinary)
  })
  // The rooms kept by the application, as ws's users keep them, and a send loop.
  app.ws(ROOM_BROADCAST_ROUTE, {
    ...settings,
    open (ws) {
      const names = roomsForNextConnection()
      ws.getUserData().rooms = names
      rooms.join(ws, names)
    },
    close: (ws) => rooms.leave(ws, ws.getUserData().rooms),
    message (ws, message, isBinary) {
      for (const client of rooms.members(ROOM)) client.send(message, isBinary)
    }
  })
  app.ws(JSON_ROUTE, {
    ...settings,
    message (ws, message) {
      let parsed
      try {
        parsed = JSON.parse(Buffer.from(message).toString())
      } catch {
        ws.end(1007, 'invalid JSON')
        return
      }
      if (!validate(parsed)) {
        ws.end(1008, 'invalid message')
        return
      }
      ws.send(JSON.stringify(parsed), false)
    }
  })
  app.any('/*', (res) => res.writeStatus('404 Not Found').end('not found'))

  const port = await new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (listenSocket) => {
      if (listenSocket === false) reject(new Error('uWS could not listen on 127.0.0.1'))
      else resolve(uWS.us_socket_local_port(listenSocket))
    })
  })
  return {
    port,
    features: {
      broadcast: true,
      json: true,
      topics: true,
      deflate: 'permessage-deflate is not set up on the reference servers'
    }
  }
})
