// A Fastify app with the plugin, and the clients and recorders the tests use
// on it: `ws` clients over TCP, in-memory clients (injectWS), log capture, and
// small promise tools for waiting on what the server does.

import { once } from 'node:events'
import type net from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import WebSocket from 'ws'
import websocket, { type WebSocketConnection, type WebSocketPluginOptions, type WebSocketRouteSettings } from '../../lib/index.js'

/** The slice of a tap Test these helpers use. */
export interface Tap {
  teardown (fn: () => unknown): void
}

const openedBy = new WeakMap<FastifyInstance, Set<{ destroy: () => void }>>()

/**
 * A Fastify app with the plugin registered, closed when the test ends
 * (whatever the test left open is destroyed first). Routes are added by the
 * caller before `listen`.
 */
export async function build (t: Tap, plugin: WebSocketPluginOptions = {}, server: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(server)
  const sockets = new Set<{ destroy: () => void }>()
  openedBy.set(app, sockets)
  t.teardown(async () => {
    // Whatever a failing test left open must not keep app.close() waiting.
    for (const s of sockets) s.destroy()
    await app.close()
  })
  await app.register(websocket, plugin)
  return app
}

/** What registering the plugin with `options` rejects with; throws if it does not (options of any shape, for tests of the checks). */
export async function registerError (options: object): Promise<unknown> {
  const app = Fastify()
  try {
    await app.register(websocket, options as any)
  } catch (error) {
    return error
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error(`registering with ${Object.keys(options).join(', ')} did not fail`)
}

/** Has `socket` destroyed when the test that built `app` ends. */
export function track (app: FastifyInstance, socket: { destroy: () => void }): void {
  openedBy.get(app)?.add(socket)
}

/** Listens on 127.0.0.1, on a free port, and returns the port. */
export async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as net.AddressInfo).port
}

/** A `ws` client connected to `path`; rejects if the handshake fails. Its messages: inboxOf(ws). */
export async function connect (app: FastifyInstance, path: string, protocols?: string | string[], options?: WebSocket.ClientOptions): Promise<WebSocket> {
  const port = (app.server.address() as net.AddressInfo).port
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols, options)
  track(app, { destroy: () => ws.terminate() })
  // Frames that came with the 101 are emitted before an `await connect()` resumes.
  inboxes.set(ws, new Inbox(ws))
  await new Promise<void>((resolve, reject) => {
    const onOpen = (): void => {
      ws.off('error', onError)
      ws.off('unexpected-response', onUnexpected)
      resolve()
    }
    const onError = (err: Error): void => {
      ws.off('open', onOpen)
      reject(err)
    }
    const onUnexpected = (_req: unknown, res: { statusCode?: number }): void => {
      ws.off('open', onOpen)
      ws.terminate()
      reject(new Error(`unexpected response ${res.statusCode}`))
    }
    ws.once('open', onOpen)
    ws.once('error', onError)
    ws.once('unexpected-response', onUnexpected)
  })
  return ws
}

const inboxes = new WeakMap<WebSocket, Inbox>()

/** The messages a client from `connect` received, from the first one on. */
export function inboxOf (ws: WebSocket): Inbox {
  const inbox = inboxes.get(ws)
  if (inbox === undefined) throw new Error('not a client from connect()')
  return inbox
}

/** Resolves with the code and reason of a `ws` client's `close` event. */
export async function clientClosed (ws: WebSocket): Promise<{ code: number, reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('the client is already closed')
  const [code, reason] = await once(ws, 'close') as [number, Buffer]
  return { code, reason: reason.toString('utf8') }
}

/**
 * The code and reason of a connection's `close` event. Unlike events.once,
 * an `error` event before it does not reject.
 */
export async function closeEvent (conn: { once (event: 'close', listener: (code: number, reason: string) => void): unknown }): Promise<[number, string]> {
  return await new Promise((resolve) => {
    conn.once('close', (code: number, reason: string) => resolve([code, reason]))
  })
}

export interface Received {
  data: Buffer
  isBinary: boolean
}

/** A `ws` client or a connection: what an Inbox listens to. */
interface MessageSource {
  on (event: 'message', listener: (data: any, isBinary: boolean) => void): unknown
  once (event: 'close', listener: (code: number, reason: any) => void): unknown
}

/**
 * What a `ws` client or a connection receives, in order, from the first
 * message on. `next()` waits for the next unread one and rejects once the
 * source has closed with nothing left to read; `closed` is its close code
 * and reason.
 */
export class Inbox {
  readonly received: Received[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  private read = 0
  private ended = false
  private waiters: Array<() => void> = []

  constructor (source: MessageSource) {
    source.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
      this.received.push({ data: buf, isBinary })
      this.wake()
    })
    this.closed = new Promise((resolve) => {
      source.once('close', (code: number, reason: Buffer | string) => {
        this.ended = true
        this.wake()
        resolve({ code, reason: Buffer.isBuffer(reason) ? reason.toString('utf8') : String(reason) })
      })
    })
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  private async until (done: () => boolean, what: string): Promise<void> {
    while (!done()) {
      if (this.ended) throw new Error(`the connection closed before ${what} (${this.received.length} received)`)
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  /** The next unread message. */
  async next (): Promise<Received> {
    await this.until(() => this.read < this.received.length, 'the next message')
    return this.received[this.read++]
  }

  async nextText (): Promise<string> {
    return (await this.next()).data.toString('utf8')
  }

  /** The next unread message, which must be text, parsed as JSON. */
  async json (): Promise<any> {
    const { data, isBinary } = await this.next()
    if (isBinary) throw new Error('expected a text message, got a binary one')
    return JSON.parse(data.toString('utf8'))
  }

  /** Waits until `count` messages have arrived in total. */
  async untilCount (count: number): Promise<void> {
    await this.until(() => this.received.length >= count, `message ${count}`)
  }

  /** How many received messages wait to be read by `next()`. */
  get unread (): number {
    return this.received.length - this.read
  }
}

/** An in-memory client (app.injectWS) with its Inbox: `send` takes a string or a value to send as JSON. */
export class InjectedClient extends Inbox {
  readonly conn: WebSocketConnection<undefined>

  constructor (conn: WebSocketConnection<undefined>) {
    super(conn)
    this.conn = conn
  }

  send (value: unknown): void {
    this.conn.send(typeof value === 'string' ? value : JSON.stringify(value))
  }
}

/** Connects in memory (no listen needed). */
export async function injectClient (app: FastifyInstance, path: string): Promise<InjectedClient> {
  return new InjectedClient(await app.injectWS(path))
}

/** Values in arrival order; `next()` waits for the next one. */
export class Queue<T> {
  private readonly items: T[] = []
  private readonly waiters: Array<(value: T) => void> = []

  push (value: T): void {
    const waiter = this.waiters.shift()
    if (waiter !== undefined) waiter(value)
    else this.items.push(value)
  }

  async next (): Promise<T> {
    if (this.items.length > 0) return this.items.shift()!
    return await new Promise<T>((resolve) => this.waiters.push(resolve))
  }
}

/** A promise with its resolve function outside, for the test to release later. */
export function gate<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => { resolve = r })
  return { promise, resolve }
}

/** A log destination (`logger: { stream }`) that keeps every line pino writes, parsed. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, any>> = []

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line !== '') this.lines.push(JSON.parse(line))
    }
    callback()
  }

  find (predicate: (line: Record<string, any>) => boolean): Record<string, any> | undefined {
    return this.lines.find(predicate)
  }
}

/** Adds a WebSocket route whose server-side connections the test takes, in order, with `next()`. */
export function acceptConnections (app: FastifyInstance, path: string, settings: WebSocketRouteSettings | true = true): Queue<WebSocketConnection<FastifyRequest>> {
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get(path, { websocket: settings }, (conn) => { conns.push(conn) })
  return conns
}

/** A server-side connection's TCP socket. */
export function serverSocket (conn: WebSocketConnection<FastifyRequest>): net.Socket {
  return conn.request.raw.socket as net.Socket
}
