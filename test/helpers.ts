import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import WebSocket from 'ws'
import websocket, { type WebSocketPluginOptions } from '../lib/index.js'

/** The slice of a tap Test these helpers use. */
interface Tap {
  teardown (fn: () => unknown): void
}

/**
 * A Fastify app with the plugin registered, closed when the test ends.
 * Routes are added by the caller before `listen`.
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

const openedBy = new WeakMap<FastifyInstance, Set<{ destroy: () => void }>>()

function track (app: FastifyInstance, socket: { destroy: () => void }): void {
  openedBy.get(app)?.add(socket)
}

/** Listens on 127.0.0.1, on a free port, and returns the port. */
export async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as net.AddressInfo).port
}

/** A `ws` client connected to `path`; rejects if the handshake fails. */
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

interface MessageSource {
  on (event: 'message', listener: (data: any, isBinary: boolean) => void): unknown
}

/** Collects `message` events in arrival order; `next()` waits for the next one. */
export class Inbox {
  readonly received: Array<{ data: Buffer, isBinary: boolean }> = []
  private read = 0
  private waiters: Array<() => void> = []

  constructor (source: MessageSource) {
    source.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
      this.received.push({ data: buf, isBinary })
      const waiters = this.waiters
      this.waiters = []
      for (const w of waiters) w()
    })
  }

  async next (): Promise<{ data: Buffer, isBinary: boolean }> {
    while (this.read >= this.received.length) await new Promise<void>((resolve) => this.waiters.push(resolve))
    return this.received[this.read++]
  }

  async nextText (): Promise<string> {
    return (await this.next()).data.toString('utf8')
  }

  /** Waits until `count` messages have arrived in total. */
  async untilCount (count: number): Promise<void> {
    while (this.received.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve))
  }
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

/** A pino destination that keeps every log line, parsed. */
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

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

/**
 * The text of an opening handshake for `path`. `headers` adds or replaces
 * headers (case-insensitively); a null value removes one.
 */
export function handshake (path: string, headers: Record<string, string | null> = {}): string {
  const list: Array<[string, string]> = [
    ['Host', '127.0.0.1'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', KEY],
    ['Sec-WebSocket-Version', '13']
  ]
  for (const [name, value] of Object.entries(headers)) {
    const at = list.findIndex(([n]) => n.toLowerCase() === name.toLowerCase())
    if (at !== -1) list.splice(at, 1)
    if (value !== null) list.push([name, value])
  }
  return `GET ${path} HTTP/1.1\r\n` + list.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n'
}

export interface RawResponse {
  status: number
  statusText: string
  /** Lower-cased names. */
  headers: Record<string, string>
  /** The header lines as sent, for checking names. */
  head: string
  body: string
  /** Bytes that followed the head (the body, or WebSocket frames after a 101). */
  rest: Buffer
}

/** A raw TCP connection to the app, with everything it received kept in order. */
export class RawPeer {
  readonly socket: net.Socket
  private buffer: Buffer = Buffer.alloc(0)
  private waiters: Array<() => void> = []
  ended = false
  closed = false

  private constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.wake()
    })
    socket.on('end', () => {
      this.ended = true
      this.wake()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake()
    })
    // A reset from the server shows up as `close`; the tests check for that.
    socket.on('error', () => {})
  }

  /** `allowHalfOpen`: keep our side open after the server ends its side, as a stubborn client would. */
  static async open (app: FastifyInstance, options: { allowHalfOpen?: boolean } = {}): Promise<RawPeer> {
    const port = (app.server.address() as net.AddressInfo).port
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false })
    track(app, socket)
    await once(socket, 'connect')
    return new RawPeer(socket)
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  private async until<T> (take: () => T | undefined): Promise<T> {
    for (;;) {
      const value = take()
      if (value !== undefined) return value
      if (this.closed) throw new Error(`the connection closed; received ${JSON.stringify(this.buffer.toString('latin1'))}`)
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  write (data: string | Buffer): void {
    this.socket.write(data)
  }

  /** Reads one HTTP response: the head, then a body of Content-Length bytes (or up to the end of the connection). */
  async response (): Promise<RawResponse> {
    return await this.until(() => {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end === -1) return undefined
      const head = this.buffer.subarray(0, end).toString('latin1')
      const [statusLine, ...lines] = head.split('\r\n')
      const match = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine)
      if (match === null) throw new Error(`bad status line ${JSON.stringify(statusLine)}`)
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      const status = Number(match[1])
      const after = this.buffer.subarray(end + 4)
      let bodyLength: number
      if (status === 101) {
        bodyLength = 0
      } else if (headers['content-length'] !== undefined) {
        bodyLength = Number(headers['content-length'])
        if (after.length < bodyLength) return undefined
      } else {
        if (!this.ended) return undefined
        bodyLength = after.length
      }
      this.buffer = Buffer.from(after.subarray(bodyLength))
      const body = after.subarray(0, bodyLength).toString('utf8')
      return { status, statusText: match[2], headers, head, body, rest: this.buffer }
    })
  }

  /** The next complete frame from the server. */
  async frame (): Promise<Frame> {
    return await this.until(() => {
      const parsed = readFrame(this.buffer)
      if (parsed === null) return undefined
      this.buffer = this.buffer.subarray(parsed.size)
      return parsed.frame
    })
  }

  /** Resolves once the server has ended or closed the connection. */
  async end (): Promise<void> {
    await this.until(() => this.ended || this.closed ? true : undefined).catch(() => {})
  }

  /** Resolves once the TCP connection is fully closed. */
  async closedEvent (): Promise<void> {
    if (!this.closed) await once(this.socket, 'close')
  }

  destroy (): void {
    this.socket.destroy()
  }
}

/** Opens a raw connection, sends a valid handshake for `path` (plus `extra` bytes in the same write) and reads the 101. */
export async function rawUpgrade (app: FastifyInstance, path: string, extra?: Buffer, headers?: Record<string, string | null>): Promise<{ peer: RawPeer, response: RawResponse }> {
  const peer = await RawPeer.open(app)
  const request = Buffer.from(handshake(path, headers), 'latin1')
  peer.write(extra === undefined ? request : Buffer.concat([request, extra]))
  const response = await peer.response()
  if (response.status !== 101) throw new Error(`expected 101, got ${response.status}: ${response.body}`)
  return { peer, response }
}

/** Sends `request` on a fresh raw connection and reads the response. */
export async function rawRequest (app: FastifyInstance, request: string): Promise<RawResponse & { peer: RawPeer }> {
  const peer = await RawPeer.open(app)
  peer.write(request)
  const response = await peer.response()
  return { ...response, peer }
}

export interface Frame {
  fin: boolean
  opcode: number
  masked: boolean
  payload: Buffer
}

/** Parses one frame at the start of `data`, or returns null if it is incomplete. */
export function readFrame (data: Buffer): { frame: Frame, size: number } | null {
  if (data.length < 2) return null
  let length = data[1] & 0x7f
  let offset = 2
  if (length === 126) {
    if (data.length < 4) return null
    length = data.readUInt16BE(2)
    offset = 4
  } else if (length === 127) {
    if (data.length < 10) return null
    length = Number(data.readBigUInt64BE(2))
    offset = 10
  }
  const masked = (data[1] & 0x80) !== 0
  const key = masked ? data.subarray(offset, offset + 4) : null
  if (masked) offset += 4
  if (data.length < offset + length) return null
  const payload = Buffer.from(data.subarray(offset, offset + length))
  if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]
  return { frame: { fin: (data[0] & 0x80) !== 0, opcode: data[0] & 0x0f, masked, payload }, size: offset + length }
}

/** A frame as a client would send it: masked with a random key unless `mask` is false. */
export function clientFrame (opcode: number, payload: Buffer | string = Buffer.alloc(0), options: { fin?: boolean, mask?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  const mask = options.mask ?? true
  const head: number[] = [(options.fin === false ? 0 : 0x80) | opcode]
  const maskBit = mask ? 0x80 : 0
  if (data.length < 126) {
    head.push(maskBit | data.length)
  } else if (data.length < 65536) {
    head.push(maskBit | 126, data.length >> 8, data.length & 0xff)
  } else {
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(data.length))
    head.push(maskBit | 127, ...len)
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data])
  const key = randomBytes(4)
  const body = Buffer.from(data)
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3]
  return Buffer.concat([Buffer.from(head), key, body])
}

/** The payload of a close frame. */
export function closePayload (code: number, reason = ''): Buffer {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason))
  out.writeUInt16BE(code, 0)
  out.write(reason, 2, 'utf8')
  return out
}

/** Reads the code and reason of a close frame. */
export function parseClose (frame: Frame): { code: number, reason: string } {
  if (frame.opcode !== 0x8) throw new Error(`expected a close frame, got opcode ${frame.opcode}`)
  if (frame.payload.length < 2) return { code: 1005, reason: '' }
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') }
}

/** How many timers (setTimeout/setInterval) are active in the process. */
export function activeTimers (): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
}
