// Socket.IO 4, the usual way to scale rooms out: with BENCH_REDIS_URL, one
// instance of the cross-instance scenario, rooms carried across instances by
// @socket.io/redis-adapter on ioredis, as its documentation sets it up.
// Without it (the run's long-lived process), a single instance: it proves
// socket.io loads, and answers that it is measured across instances only.

import { once } from 'node:events'
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'
import { ROOM } from '../../lib/rooms.mjs'
import { serve } from '../child.mjs'

serve(async () => {
  const url = process.env.BENCH_REDIS_URL
  const httpServer = createServer()
  const io = new Server(httpServer, {
    transports: ['websocket'],
    // Engine.IO's heartbeat pings are data frames, which the generator would
    // count as deliveries: none during a cell (they last well under a minute).
    pingInterval: 10 * 60_000,
    pingTimeout: 60_000
  })
  if (url !== undefined) {
    const pubClient = new Redis(url)
    const subClient = pubClient.duplicate()
    await Promise.all([once(pubClient, 'ready'), once(subClient, 'ready')])
    io.adapter(createAdapter(pubClient, subClient))
  }
  io.on('connection', (socket) => {
    socket.join(ROOM)
    socket.on('pub', (text) => io.to(ROOM).emit('msg', text))
  })
  httpServer.listen(0, '127.0.0.1')
  await once(httpServer, 'listening')
  return { port: httpServer.address().port }
})
