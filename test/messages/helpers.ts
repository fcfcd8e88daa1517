import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import websocket, { type WebSocketConnection, type WebSocketPluginOptions } from '../../lib/index.js'

/** The slice of a tap Test the helpers use. */
interface Tap {
  teardown (fn: () => unknown): void
}

/** A Fastify app with the plugin registered, closed when the test ends. */
export async function build (t: Tap, plugin: WebSocketPluginOptions = {}, server: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(server)
  t.teardown(() => app.close())
  await app.register(websocket, plugin)
  return app
}

export interface Received {
  data: Buffer
  isBinary: boolean
}

/**
 * What a client receives, in order: `next()` / `json()` resolve with the
 * next message, `closed` with the close code and reason.
 */
export class Inbox {
  readonly conn: WebSocketConnection<undefined>
  readonly closed: Promise<{ code: number, reason: string }>
  private readonly queue: Received[] = []
  private readonly waiting: Array<(item: Received | null) => void> = []
  private ended = false

  constructor (conn: WebSocketConnection<undefined>) {
    this.conn = conn
    conn.on('message', (data: Buffer, isBinary: boolean) => {
      const waiter = this.waiting.shift()
      if (waiter !== undefined) waiter({ data, isBinary })
      else this.queue.push({ data, isBinary })
    })
    this.closed = new Promise((resolve) => {
      conn.once('close', (code: number, reason: string) => {
        this.ended = true
        for (const waiter of this.waiting.splice(0)) waiter(null)
        resolve({ code, reason })
      })
    })
  }

  /** The next message; rejects if the connection closes first. */
  next (): Promise<Received> {
    const item = this.queue.shift()
    if (item !== undefined) return Promise.resolve(item)
    if (this.ended) return Promise.reject(new Error('the connection closed'))
    return new Promise((resolve, reject) => {
      this.waiting.push((received) => received === null ? reject(new Error('the connection closed')) : resolve(received))
    })
  }

  /** The next message, parsed as JSON. */
  async json (): Promise<any> {
    const { data, isBinary } = await this.next()
    if (isBinary) throw new Error('expected a text message, got a binary one')
    return JSON.parse(data.toString())
  }

  /** How many received messages wait to be read. */
  get size (): number {
    return this.queue.length
  }

  send (value: unknown): void {
    this.conn.send(typeof value === 'string' ? value : JSON.stringify(value))
  }
}

/** Connects in memory and wraps the client in an Inbox. */
export async function connect (app: FastifyInstance, path: string): Promise<Inbox> {
  const conn = await app.injectWS(path)
  return new Inbox(conn)
}

/** A logger capturing entries as objects (pino writes one JSON line per entry). */
export function captureLogs (): { stream: { write (line: string): void }, entries: Array<Record<string, any>> } {
  const entries: Array<Record<string, any>> = []
  return {
    entries,
    stream: {
      write (line: string) {
        entries.push(JSON.parse(line))
      }
    }
  }
}
