// Example app: a chat over fastify-rfc6455, next to ordinary REST routes.
// Rooms are topics: joining one subscribes the connection, saying something
// publishes to it.
//
//   npm start                      # http://127.0.0.1:3000 (PORT and HOST override)
//
// With REDIS_URL, rooms are shared through Redis by every instance started
// with the same URL (without it, they live in this process):
//
//   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 npm start
//   REDIS_URL=redis://127.0.0.1:6379 PORT=3001 npm start
//
//   GET /                          the chat page (index.html)
//   GET /api/health                { status: 'ok', connections }
//   GET /chat?name=NAME&room=ROOM  WebSocket: the chat itself, starting in ROOM (default lobby)
//                                  plain HTTP: ROOM's recent messages on this instance
//   GET /asyncapi                  the chat protocol, generated from the schemas below (AsyncAPI 3.0):
//                                  a page; /asyncapi/json and /asyncapi/yaml the document itself
//
// Chat protocol, JSON text messages:
//   client → server  { "type": "join", "room": "ROOM" }   { "type": "leave", "room": "ROOM" }
//                    { "type": "say", "room": "ROOM", "text": "hello" }
//   server → client  { type: 'welcome', name, room, history }      you are in ROOM (on connecting, after a join)
//                    { type: 'message', room, name, text, at }     to everyone in the room, sender included
//                    { type: 'joined' | 'left', room, name, at }   someone else came or went
//                    { type: 'error', message }
//   Anything else is answered { statusCode: 400, code, message } (the plugin's onInvalidMessage).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
// In an application: import websocket from 'fastify-rfc6455'
//                     import { redisAdapter } from 'fastify-rfc6455/redis'
import websocket from '../../lib/index.js'
import { redisAdapter } from '../../lib/adapters/redis.js'

const MAX_TEXT = 1000
const MAX_ROOMS = 10 // rooms one connection may be in at once
const HISTORY = 50

const roomName = { type: 'string', minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9_-]+$' } as const

const chatQuery = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 32, pattern: '\\S' },
    room: { ...roomName, default: 'lobby' }
  },
  required: ['name'],
  additionalProperties: false
} as const

// What clients may send: one schema per `type`, validated before the handlers below see it.
// The descriptions and examples are for the AsyncAPI document (GET /asyncapi).
const clientMessage = {
  anyOf: [
    {
      type: 'object',
      description: 'Enter a room (answered with a welcome; the others in the room are told)',
      properties: { type: { const: 'join' }, room: roomName },
      required: ['type', 'room'],
      examples: [{ type: 'join', room: 'kitchen' }]
    },
    {
      type: 'object',
      description: 'Leave a room (the others in it are told)',
      properties: { type: { const: 'leave' }, room: roomName },
      required: ['type', 'room']
    },
    {
      type: 'object',
      description: 'Say something in a room you are in',
      properties: { type: { const: 'say' }, room: roomName, text: { type: 'string', maxLength: MAX_TEXT, pattern: '\\S' } },
      required: ['type', 'room', 'text'],
      examples: [{ type: 'say', room: 'kitchen', text: 'soup is ready' }]
    }
  ]
} as const

// A chat message as the server sends it, alone or in a room's history: shared with
// app.addSchema, so the AsyncAPI document has it once, in components.schemas.
const chatMessage = {
  $id: 'ChatMessage',
  type: 'object',
  description: 'Something said in a room',
  properties: {
    type: { const: 'message' },
    room: { type: 'string' },
    name: { type: 'string', description: 'who said it' },
    text: { type: 'string' },
    at: { type: 'string', format: 'date-time' }
  },
  required: ['type', 'room', 'name', 'text', 'at']
} as const

const presence = (type: 'joined' | 'left', description: string) => ({
  type: 'object',
  description,
  properties: { type: { const: type }, room: { type: 'string' }, name: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
  required: ['type', 'room', 'name', 'at']
}) as const

// What the server sends (conn.sendJson, publishJson): serialized with this schema.
const serverMessage = {
  anyOf: [
    {
      type: 'object',
      description: 'You are in the room: on connecting, and after a join',
      properties: {
        type: { const: 'welcome' },
        name: { type: 'string' },
        room: { type: 'string' },
        history: { type: 'array', items: { $ref: 'ChatMessage#' }, description: `the room's last ${HISTORY} messages on this instance` }
      },
      required: ['type', 'name', 'room', 'history']
    },
    { $ref: 'ChatMessage#' },
    presence('joined', 'Someone else came into one of your rooms'),
    presence('left', 'Someone left one of your rooms'),
    {
      type: 'object',
      description: 'A request the server could not carry out',
      properties: { type: { const: 'error' }, message: { type: 'string' } },
      required: ['type', 'message']
    }
  ]
} as const

interface ChatQuery {
  name: string
  room: string
}

type ClientMessage =
  | { type: 'join', room: string }
  | { type: 'leave', room: string }
  | { type: 'say', room: string, text: string }

interface ChatMessage {
  type: 'message'
  room: string
  name: string
  text: string
  at: string
}

type ServerMessage =
  | ChatMessage
  | { type: 'welcome', name: string, room: string, history: ChatMessage[] }
  | { type: 'joined' | 'left', room: string, name: string, at: string }
  | { type: 'error', message: string }

export interface BuildOptions {
  logger?: FastifyServerOptions['logger']
  /** Share rooms with the other instances using this Redis (start() passes $REDIS_URL). */
  redisUrl?: string
}

export async function build (options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  await app.register(websocket, {
    // Chat messages are small: a low limit keeps a misbehaving client from hogging memory.
    maxMessageSize: 16 * 1024,
    // The AsyncAPI document of the WebSocket routes, served at /asyncapi (page), /asyncapi/json and /asyncapi/yaml.
    asyncapi: {
      routePrefix: '/asyncapi',
      info: { title: 'fastify-rfc6455 chat', version: '1.0.0', description: 'Chat rooms over one WebSocket: join, leave, say.' }
    },
    // Publishes reach the rooms' subscribers on every instance; without it, in this process only.
    adapter: options.redisUrl === undefined ? undefined : redisAdapter({ url: options.redisUrl })
  })

  // The members of a room are the connections subscribed to its topic.
  const topicOf = (room: string): string => `room:${room}`
  // The last messages said in each room, for newcomers: those said through this
  // instance. Publishes from other instances go from Redis straight to this one's
  // sockets, not through this code, so each instance has a history of its own
  // (a shared one would be kept in Redis too, e.g. a capped list per room).
  const history = new Map<string, ChatMessage[]>()
  const now = (): string => new Date().toISOString()

  const page = join(__dirname, 'index.html')
  app.get('/', async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').send(await readFile(page))
  })

  app.get('/api/health', async () => ({ status: 'ok', connections: app.websocket.clients.size }))
  app.addSchema(chatMessage)

  app.route<{ Querystring: ChatQuery, Message: ClientMessage, Outgoing: ServerMessage }>({
    method: 'GET',
    url: '/chat',
    schema: {
      summary: 'The chat',
      description: 'Connect with a name and a first room; then join, leave and say things in rooms. ' +
        'A plain GET returns the room\'s recent messages instead.',
      tags: ['chat'],
      querystring: chatQuery,
      message: clientMessage,
      outgoing: serverMessage
    },
    // Plain HTTP on the chat URL: what a newcomer would see.
    handler: async (request) => ({ room: request.query.room, history: history.get(request.query.room) ?? [] }),
    wsHandler: (conn, request) => {
      const name = request.query.name.trim()
      // The rooms this connection is in, to say goodbye in each when it closes
      // (by then it has left their topics already).
      const rooms = new Set<string>()

      const enter = (room: string): void => {
        if (!rooms.has(room)) {
          if (rooms.size === MAX_ROOMS) {
            conn.sendJson({ type: 'error', message: `at most ${MAX_ROOMS} rooms at once` })
            return
          }
          rooms.add(room)
          conn.subscribe(topicOf(room))
          conn.publishJson(topicOf(room), { type: 'joined', room, name, at: now() }) // to the others
        }
        conn.sendJson({ type: 'welcome', name, room, history: history.get(room) ?? [] })
      }

      const leave = (room: string): void => {
        if (!rooms.delete(room)) return
        conn.unsubscribe(topicOf(room))
        conn.publishJson(topicOf(room), { type: 'left', room, name, at: now() })
        if (app.websocket.subscriberCount(topicOf(room)) === 0) history.delete(room)
      }

      enter(request.query.room)
      conn.onJson('type', {
        join: ({ room }) => enter(room),
        leave: ({ room }) => leave(room),
        say: ({ room, text }) => {
          if (!rooms.has(room)) {
            conn.sendJson({ type: 'error', message: `join #${room} before saying something there` })
            return
          }
          const message: ChatMessage = { type: 'message', room, name, text: text.trim(), at: now() }
          const recent = history.get(room) ?? []
          recent.push(message)
          if (recent.length > HISTORY) recent.shift()
          history.set(room, recent)
          // To everyone in the room, the sender too; serialized once.
          app.websocket.publish(topicOf(room), conn.serializeJson(message))
        }
      })

      conn.on('close', () => {
        for (const room of rooms) leave(room)
      })
    }
  })

  return app
}

async function start (): Promise<void> {
  const app = await build({ logger: true, redisUrl: process.env.REDIS_URL || undefined })
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
