// One instance of the cross-instance scenario with bare ws and ioredis, as
// ws users write a room across processes: every message is PUBLISHed to the
// room's channel, and each instance, the sender's included, sends what its
// subscriber connection receives to its members of the room (a Set).

import { once } from 'node:events'
import { Redis } from 'ioredis'
import { WebSocket, WebSocketServer } from 'ws'
import { INSTANCE_ROUTE } from '../../lib/rooms.mjs'
import { serve } from '../child.mjs'

const CHANNEL = 'room:bench'

serve(async () => {
  const url = process.env.BENCH_REDIS_URL
  if (url === undefined) throw new Error('BENCH_REDIS_URL is not set: this server runs as an instance of the cross-instance scenario')
  const pub = new Redis(url)
  const sub = new Redis(url)
  await sub.subscribe(CHANNEL)
  const members = new Set()
  // Buffers in, buffers out: the text is not decoded and encoded again.
  sub.on('messageBuffer', (_channel, message) => {
    for (const client of members) {
      if (client.readyState === WebSocket.OPEN) client.send(message, { binary: false })
    }
  })

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: INSTANCE_ROUTE })
  wss.on('connection', (ws) => {
    members.add(ws)
    ws.on('close', () => members.delete(ws))
    ws.on('message', (data) => pub.publish(CHANNEL, data))
  })
  await once(wss, 'listening')
  return { port: wss.address().port }
})
