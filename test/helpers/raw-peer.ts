// A peer on a raw TCP connection, for what a `ws` client will not do: write
// any bytes (handshakes with odd headers, forbidden frames, nothing at all)
// and read exactly what the server sent, in order.

import { once } from 'node:events'
import net from 'node:net'
import type { FastifyInstance } from 'fastify'
import { track } from './app.js'
import { decodeFrame, type Frame } from './wire.cjs'

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
      const decoded = decodeFrame(this.buffer)
      if (decoded === null) return undefined
      this.buffer = this.buffer.subarray(decoded.size)
      return decoded.frame
    })
  }

  /** Bytes received and not read yet by `response()` or `frame()`. */
  get unread (): Buffer {
    return this.buffer
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

export type Outcome = number | 'no answer'

/** Sends `bytes`, ends our side, and reads the answer: its status, or 'no answer' if the server closed without one. */
export async function outcome (app: FastifyInstance, bytes: string): Promise<Outcome> {
  const peer = await RawPeer.open(app)
  peer.socket.end(Buffer.from(bytes, 'latin1'))
  try {
    return (await peer.response()).status
  } catch {
    return 'no answer'
  } finally {
    peer.destroy()
  }
}
