// Upper bound: answers the upgrade, then writes back whatever bytes arrive
// without parsing frames. The echoed frames are still masked, which is not
// valid server-to-client WebSocket; the load generator accepts them.
// Offered permessage-deflate, it accepts with server_no_context_takeover:
// the client's compressed frames, each deflated on its own, come back as
// they are, which is what a server that compresses nothing costs.

import { createHash } from 'node:crypto'
import net from 'node:net'
import { once } from 'node:events'
import { DEFLATE_BROADCAST_ROUTE } from '../lib/compression.mjs'
import { serve } from './child.mjs'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const MAX_REQUEST_HEAD = 16 * 1024

// Connections on /broadcast: bytes from any of them go to all of them, the
// frame-agnostic equivalent of a broadcast.
const broadcastGroup = new Set()

// Backpressure only past a few MiB queued: pausing at every write that
// crosses the 16 KiB high-water mark would cost the ceiling server extra
// system calls on large messages.
const MAX_QUEUED = 4 * 1024 * 1024

function echo (socket) {
  return (chunk) => {
    socket.write(chunk)
    if (socket.writableLength > MAX_QUEUED && !socket.isPaused()) {
      socket.pause()
      socket.once('drain', () => socket.resume())
    }
  }
}

function relayToGroup (chunk) {
  for (const member of broadcastGroup) member.write(chunk)
}

function onConnection (socket) {
  socket.setNoDelay(true)
  socket.on('error', () => socket.destroy())
  let head = Buffer.alloc(0)
  const onHead = (chunk) => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
    const end = head.indexOf('\r\n\r\n')
    if (end === -1) {
      if (head.length > MAX_REQUEST_HEAD) socket.destroy()
      return
    }
    socket.off('data', onHead)
    const lines = head.subarray(0, end).toString('latin1').split('\r\n')
    const path = lines[0].split(' ')[1]
    const keyLine = lines.find((line) => /^sec-websocket-key:/i.test(line))
    if (keyLine === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      return
    }
    const key = keyLine.slice(keyLine.indexOf(':') + 1).trim()
    const accept = createHash('sha1').update(key + GUID).digest('base64')
    const deflate = lines.some((line) => /^sec-websocket-extensions:.*permessage-deflate/i.test(line))
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n' : '') +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`
    )
    let onFrames = echo(socket)
    if (path === '/broadcast' || path === DEFLATE_BROADCAST_ROUTE) {
      broadcastGroup.add(socket)
      socket.on('close', () => broadcastGroup.delete(socket))
      onFrames = relayToGroup
    }
    socket.on('data', onFrames)
    const rest = head.subarray(end + 4)
    if (rest.length > 0) onFrames(rest)
  }
  socket.on('data', onHead)
}

serve(async () => {
  const server = net.createServer(onConnection)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: server.address().port,
    features: { broadcast: true, json: 'the raw server does not parse frames', deflate: true, topics: 'the raw server has no rooms' }
  }
})
