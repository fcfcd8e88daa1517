// Example app: a chat over fastify-rfc6455, next to ordinary REST routes.
//
//   npm start                      # http://127.0.0.1:3000 (PORT and HOST override)
//
//   GET /                          the chat page (index.html)
//   GET /api/health                { status: 'ok', connections }
//   GET /api/rooms                 [{ name, members: [names] }]
//   GET /chat?name=NAME&room=ROOM  WebSocket: the chat itself
//                                  plain HTTP: the room's members and recent messages
//
// Chat protocol, JSON text messages:
//   client → server  { "text": "hello" }
//   server → client  { "type": "welcome", name, room, members, history }
//                    { "type": "message", id, name, text, at }
//                    { "type": "join" | "leave", name, members, at }
//                    { "type": "error", message }
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
// In an application: import websocket from 'fastify-rfc6455'
import websocket, { type WebSocketConnection } from '../../lib/index.js'

const MAX_TEXT = 1000
const HISTORY = 50

const chatQuery = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 32, pattern: '\\S' },
    room: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9_-]+$', default: 'lobby' }
  },
  required: ['name'],
  additionalProperties: false
} as const

interface ChatQuery {
  name: string
  room: string
}

interface ChatMessage {
  type: 'message'
  id: number
  name: string
  text: string
  at: string
}

interface Member {
  name: string
  conn: WebSocketConnection<unknown>
}

interface Room {
  members: Set<Member>
  history: ChatMessage[]
}

export interface BuildOptions {
  logger?: FastifyServerOptions['logger']
}

export async function build (options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  // Chat messages are small: a low limit keeps a misbehaving client from hogging memory.
  await app.register(websocket, { maxMessageSize: 16 * 1024 })

  const rooms = new Map<string, Room>()
  let nextId = 1

  const roomOf = (name: string): Room => {
    let room = rooms.get(name)
    if (room === undefined) {
      room = { members: new Set(), history: [] }
      rooms.set(name, room)
    }
    return room
  }
  const namesIn = (room: Room | undefined): string[] => room === undefined ? [] : [...room.members].map((m) => m.name)
  const broadcast = (room: Room, payload: object): void => {
    app.websocket.broadcast(JSON.stringify(payload), { clients: [...room.members].map((m) => m.conn) })
  }

  const page = join(__dirname, 'index.html')
  app.get('/', async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').send(await readFile(page))
  })

  app.get('/api/health', async () => ({ status: 'ok', connections: app.websocket.clients.size }))

  app.get('/api/rooms', async () => {
    return [...rooms].map(([name, room]) => ({ name, members: namesIn(room) }))
  })

  app.route<{ Querystring: ChatQuery }>({
    method: 'GET',
    url: '/chat',
    schema: { querystring: chatQuery },
    // Plain HTTP on the chat URL: what a newcomer would see.
    handler: async (request) => {
      const room = rooms.get(request.query.room)
      return { room: request.query.room, members: namesIn(room), history: room?.history ?? [] }
    },
    wsHandler: (conn, request) => {
      const name = request.query.name.trim()
      const roomName = request.query.room
      const room = roomOf(roomName)
      const member: Member = { name, conn }
      room.members.add(member)

      conn.send(JSON.stringify({ type: 'welcome', name, room: roomName, members: namesIn(room), history: room.history }))
      broadcast(room, { type: 'join', name, members: namesIn(room), at: new Date().toISOString() })

      conn.on('message', (data: Buffer, isBinary: boolean) => {
        let text: unknown
        try {
          text = isBinary ? undefined : (JSON.parse(data.toString()) as { text?: unknown }).text
        } catch {
          text = undefined
        }
        if (typeof text !== 'string' || text.trim() === '' || text.length > MAX_TEXT) {
          conn.send(JSON.stringify({ type: 'error', message: `send {"text": "..."} with 1 to ${MAX_TEXT} characters` }))
          return
        }
        const message: ChatMessage = { type: 'message', id: nextId++, name, text: text.trim(), at: new Date().toISOString() }
        room.history.push(message)
        if (room.history.length > HISTORY) room.history.shift()
        broadcast(room, message)
      })

      conn.on('close', () => {
        room.members.delete(member)
        if (room.members.size > 0) {
          broadcast(room, { type: 'leave', name, members: namesIn(room), at: new Date().toISOString() })
        } else {
          rooms.delete(roomName)
        }
      })
    }
  })

  return app
}

async function start (): Promise<void> {
  const app = await build({ logger: true })
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  await app.listen({ port, host })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down')
      app.close().then(() => process.exit(0), (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      })
    })
  }
}

// Under tsx this file is CommonJS (package.json has "type": "commonjs").
if (require.main === module) {
  start().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
