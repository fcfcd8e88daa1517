// permessage-deflate (RFC 7692) on the load generator's side, written
// independently of lib/: the offer, reading the server's answer, deflating
// a message the way a client sends it, inflating the server's replies to
// check them, a frame reader that knows RSV1 and counts bytes on the wire,
// and the frame of a compressed load job (DeflateLoad) that the echo and
// broadcast jobs share.

import { constants, createInflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib'
import { encodeFrame, OPCODE } from '../../test/helpers/wire.cjs'
import { DASHBOARD_MESSAGES } from '../lib/dashboard-messages.mjs'
import { closeAll, handleControl, openMany } from './connect.mjs'
import { CAPTURE_WAIT_MS, measureWindow, usageBetween, waitFor } from './window.mjs'

/** What browsers offer: the extension, and that we can compress with a smaller window if asked. */
export const DEFLATE_OFFER = 'permessage-deflate; client_max_window_bits'

// A sync flush ends in an empty stored block, 00 00 ff ff: RFC 7692 §7.2.1
// drops it from the wire and §7.2.2 has the receiver put it back.
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff])
// Replies are 2–4 KiB: anything far past that is a broken or hostile stream.
const MAX_INFLATED = 16 * 1024 * 1024

/**
 * The server's Sec-WebSocket-Extensions answer (null when it sent none) as
 * the agreed parameters, or null if it declined. Throws on an answer RFC 7692
 * §7.1 does not allow for our offer: another extension, an unknown,
 * duplicated or out-of-range parameter, a parameter without its value.
 */
export function parseAgreement (header) {
  if (header === null || header.trim() === '') return null
  const extensions = header.split(',').map((item) => item.trim())
  if (extensions.length !== 1) throw new Error(`one extension was offered, the server answered: ${header}`)
  const [name, ...params] = extensions[0].split(';').map((item) => item.trim())
  if (name.toLowerCase() !== 'permessage-deflate') throw new Error(`the server answered an extension that was not offered: ${header}`)
  const agreement = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }
  const seen = new Set()
  for (const param of params) {
    const equals = param.indexOf('=')
    const key = (equals === -1 ? param : param.slice(0, equals)).trim().toLowerCase()
    let value = equals === -1 ? null : param.slice(equals + 1).trim()
    if (value !== null && value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (seen.has(key)) throw new Error(`parameter ${key} twice in the server's answer: ${header}`)
    seen.add(key)
    if (key === 'server_no_context_takeover' || key === 'client_no_context_takeover') {
      if (value !== null) throw new Error(`${key} takes no value: ${header}`)
      agreement[key === 'server_no_context_takeover' ? 'serverNoContextTakeover' : 'clientNoContextTakeover'] = true
    } else if (key === 'server_max_window_bits' || key === 'client_max_window_bits') {
      // In an answer both carry a value (§7.1.2): 8..15, no leading zero.
      if (value === null || !/^(?:8|9|1[0-5])$/.test(value)) throw new Error(`${key} needs a value from 8 to 15: ${header}`)
      agreement[key === 'server_max_window_bits' ? 'serverMaxWindowBits' : 'clientMaxWindowBits'] = Number(value)
    } else {
      throw new Error(`unknown parameter "${key}" in the server's answer: ${header}`)
    }
  }
  return agreement
}

/**
 * One message deflated on its own, as a client sends it, without the 4-byte
 * tail. Every message starts from a fresh context, which is valid whether or
 * not the server allows client context takeover: nothing refers back to an
 * earlier message.
 */
export function deflateMessage (bytes, agreement) {
  const bits = agreement.clientMaxWindowBits
  // zlib's raw deflate has no 8-bit window (it would use 9): stored blocks
  // (level 0) refer to nothing before them, so they fit any window.
  const deflated = deflateRawSync(bytes, {
    finishFlush: constants.Z_SYNC_FLUSH,
    windowBits: Math.max(9, bits),
    level: bits === 8 ? 0 : 6
  })
  if (!deflated.subarray(deflated.length - 4).equals(TAIL)) throw new Error('a sync flush did not end in 00 00 ff ff')
  return deflated.subarray(0, deflated.length - 4)
}

/**
 * Inflates one connection's compressed replies in order. Without
 * server_no_context_takeover the server may refer back to its earlier
 * messages, so one inflater lives as long as the connection, and every
 * compressed message the server sent must go through it, in order; with it,
 * each message inflates on its own.
 */
export class MessageInflater {
  #keepContext
  #stream = null
  #queue = Promise.resolve()

  constructor (agreement) {
    this.#keepContext = !agreement.serverNoContextTakeover
  }

  /** Resolves with the inflated bytes; rejects if they are not valid deflate data. */
  inflate (data) {
    const next = this.#queue.then(() => this.#keepContext
      ? this.#inflateInContext(data)
      : inflateRawSync(Buffer.concat([data, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: MAX_INFLATED }))
    this.#queue = next.catch(() => {})
    return next
  }

  #inflateInContext (data) {
    this.#stream ??= createInflateRaw({ windowBits: 15 })
    const stream = this.#stream
    return new Promise((resolve, reject) => {
      const parts = []
      let size = 0
      const onData = (chunk) => {
        parts.push(chunk)
        size += chunk.length
        if (size > MAX_INFLATED) finish(new Error(`a reply inflated past ${MAX_INFLATED} bytes`))
      }
      const finish = (error) => {
        stream.off('data', onData)
        stream.off('error', finish)
        if (error) {
          // The context is lost with the error: later messages can't be read.
          this.#stream = null
          stream.destroy()
          reject(error)
        } else {
          resolve(Buffer.concat(parts, size))
        }
      }
      stream.on('data', onData)
      stream.once('error', finish)
      stream.write(Buffer.concat([data, TAIL]))
      stream.flush(constants.Z_SYNC_FLUSH, () => { if (this.#stream === stream) finish(null) })
    })
  }

  close () {
    this.#stream?.close()
    this.#stream = null
  }
}

const SCRATCH_SIZE = 14

/**
 * Reads the server's frames on one connection of a compression scenario:
 * counts complete data messages and their bytes on the wire (headers
 * included) in `counters` ({ messages, wireBytes, compressed }), checks the
 * reserved bits (RSV1 only on the first frame of a data message, RSV2 and
 * RSV3 never), hands control frames to `onControl(opcode, payload)` and
 * protocol errors to `onError(reason)`. With `inflater`, every data message
 * is kept, inflated when it had RSV1, and given in order to
 * `onMessage(opcode, bytes, compressed)`, or `onMessage(opcode, null,
 * compressed, error)` if it did not inflate. Masked frames are read too: the
 * raw server echoes the generator's own frames.
 */
export class DeflateFrameReader {
  #counters
  #inflater
  #onMessage
  #onControl
  #onError
  #scratch = Buffer.allocUnsafe(SCRATCH_SIZE)
  #scratchLength = 0
  #remaining = 0
  #inPayload = false
  #frame = { fin: false, opcode: 0, key: null, keep: false, parts: null }
  #messageOpcode = 0
  #messageCompressed = false
  #messageBytes = 0
  #messageParts = []
  #inMessage = false
  #pending = 0
  #ordered = Promise.resolve()
  #completed = 0

  constructor ({ counters, inflater = null, onMessage = () => {}, onControl = () => {}, onError = () => {} }) {
    this.#counters = counters
    this.#inflater = inflater
    this.#onMessage = onMessage
    this.#onControl = onControl
    this.#onError = onError
  }

  /** Messages kept but not yet handed to onMessage (still inflating). */
  get pending () {
    return this.#pending
  }

  /** Feeds one chunk; returns how many data messages it completed. */
  push (chunk) {
    this.#completed = 0
    const end = chunk.length
    let i = 0
    while (i < end) {
      if (this.#inPayload) {
        const take = Math.min(this.#remaining, end - i)
        if (this.#frame.keep) this.#frame.parts.push(chunk.subarray(i, i + take))
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#endFrame()
        continue
      }
      if (this.#scratchLength === 0 && end - i >= 2) {
        const size = headerSize(chunk[i + 1])
        if (end - i >= size) {
          this.#startFrame(chunk, i, size)
          i += size
          continue
        }
      }
      // A header split across reads: gathered byte by byte (rare).
      this.#scratch[this.#scratchLength++] = chunk[i++]
      if (this.#scratchLength >= 2 && this.#scratchLength === headerSize(this.#scratch[1])) {
        const size = this.#scratchLength
        this.#scratchLength = 0
        this.#startFrame(this.#scratch, 0, size)
      }
    }
    return this.#completed
  }

  #startFrame (data, offset, size) {
    const first = data[offset]
    const opcode = first & 0x0f
    const length = payloadLength(data, offset)
    const rsv1 = (first & 0x40) !== 0
    if ((first & 0x30) !== 0) this.#onError(`a frame with RSV2 or RSV3 set (first byte 0x${first.toString(16)})`)
    const control = opcode >= 0x8
    if (control) {
      if (rsv1) this.#onError(`RSV1 on a control frame (opcode ${opcode})`)
    } else if (opcode === 0x0) {
      if (rsv1) this.#onError('RSV1 on a continuation frame')
      if (!this.#inMessage) this.#onError('a continuation frame outside a message')
    } else {
      if (this.#inMessage) this.#onError(`a new data frame (opcode ${opcode}) inside a fragmented message`)
      this.#inMessage = true
      this.#messageOpcode = opcode
      this.#messageCompressed = rsv1
      this.#messageBytes = 0
    }
    if (!control) this.#messageBytes += size + length
    const frame = this.#frame
    frame.fin = (first & 0x80) !== 0
    frame.opcode = opcode
    frame.keep = control || this.#inflater !== null
    frame.key = frame.keep && (data[offset + 1] & 0x80) !== 0 ? Buffer.from(data.subarray(offset + size - 4, offset + size)) : null
    frame.parts = frame.keep ? [] : null
    this.#remaining = length
    this.#inPayload = length > 0
    if (!this.#inPayload) this.#endFrame()
  }

  #endFrame () {
    this.#inPayload = false
    const frame = this.#frame
    let payload = null
    if (frame.keep) {
      payload = frame.parts.length === 1 ? Buffer.from(frame.parts[0]) : Buffer.concat(frame.parts)
      frame.parts = null
      if (frame.key !== null) for (let j = 0; j < payload.length; j++) payload[j] ^= frame.key[j & 3]
    }
    if (frame.opcode >= 0x8) {
      this.#onControl(frame.opcode, payload)
      return
    }
    if (payload !== null) this.#messageParts.push(payload)
    if (!frame.fin) return
    this.#inMessage = false
    this.#completed++
    this.#counters.messages++
    this.#counters.wireBytes += this.#messageBytes
    if (this.#messageCompressed) this.#counters.compressed++
    if (this.#inflater === null) return
    const message = this.#messageParts.length === 1 ? this.#messageParts[0] : Buffer.concat(this.#messageParts)
    this.#messageParts = []
    this.#deliver(this.#messageOpcode, message, this.#messageCompressed)
  }

  #deliver (opcode, message, compressed) {
    this.#pending++
    // Uncompressed messages wait their turn too, so onMessage sees the order they came in.
    const bytes = compressed ? this.#inflater.inflate(message) : message
    this.#ordered = this.#ordered.then(() => bytes).then(
      (inflated) => { this.#pending--; this.#onMessage(opcode, inflated, compressed) },
      (error) => { this.#pending--; this.#onMessage(opcode, null, compressed, error) }
    )
  }
}

function headerSize (second) {
  const length7 = second & 0x7f
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + ((second & 0x80) !== 0 ? 4 : 0)
}

function payloadLength (data, offset) {
  const length7 = data[offset + 1] & 0x7f
  if (length7 === 126) return data.readUInt16BE(offset + 2)
  if (length7 === 127) return data.readUInt32BE(offset + 2) * 0x100000000 + data.readUInt32BE(offset + 6)
  return length7
}

/**
 * Opens `count` connections offering permessage-deflate. Resolves with the
 * connections and the agreed parameters; rejects (having destroyed them) if
 * the server declined, answered something invalid, or answered connections
 * differently.
 */
export async function openAgreed (port, path, count, concurrency = 64) {
  const connections = await openMany(port, path, count, concurrency, DEFLATE_OFFER)
  const answers = new Set(connections.map((connection) => connection.extensions))
  let agreement = null
  let problem = null
  if (answers.size !== 1) {
    problem = `connections got different extension answers: ${[...answers].join(' | ')}`
  } else {
    try {
      agreement = parseAgreement(connections[0].extensions)
      if (agreement === null) problem = 'the server declined permessage-deflate (no Sec-WebSocket-Extensions in its 101)'
    } catch (error) {
      problem = error.message
    }
  }
  if (problem !== null) {
    for (const connection of connections) connection.socket.destroy()
    throw new Error(problem)
  }
  return { connections, agreement }
}

/**
 * The messages as masked, compressed text frames (RSV1), deflated once for
 * the agreement, laid out so that any run of up to `longest` frames in the
 * cycle's order, from any starting index, is one slice of one buffer: a
 * refill is one write and no copy.
 */
export class FrameCycle {
  #buffer
  #offsets

  constructor (messages, agreement, longest) {
    this.length = messages.length
    const frames = messages.map((message) => encodeFrame(OPCODE.text, deflateMessage(message, agreement), { rsv1: true }))
    const sequence = Array.from({ length: frames.length + longest }, (_, i) => frames[i % frames.length])
    this.#offsets = new Array(sequence.length + 1)
    this.#offsets[0] = 0
    sequence.forEach((frame, i) => { this.#offsets[i + 1] = this.#offsets[i] + frame.length })
    this.#buffer = Buffer.concat(sequence)
    this.meanFrameBytes = this.#offsets[frames.length] / frames.length
  }

  /** Frames start, start+1, ... (n of them, n ≤ longest), start in 0..length-1. */
  take (start, n) {
    return this.#buffer.subarray(this.#offsets[start], this.#offsets[start + n])
  }
}

/**
 * The check of one reply (what onMessage of DeflateFrameReader got) against
 * the message expected: null if it is the same text, byte for byte, after
 * inflating; otherwise what is wrong.
 */
export function replyProblem (expected, opcode, bytes, compressed, error) {
  if (error) return `a reply did not inflate: ${error.message}`
  if (opcode !== OPCODE.text) return `expected a text message, got opcode ${opcode}`
  if (!bytes.equals(expected)) {
    return `a reply (${compressed ? 'compressed' : 'uncompressed'}) differs from the message sent: ` +
      `${bytes.length} bytes, expected ${expected.length}: ${bytes.subarray(0, 60).toString('utf8')}`
  }
  return null
}

/**
 * What the compressed echo and broadcast jobs share: `count` connections
 * that agreed on permessage-deflate (open), each read by a DeflateFrameReader
 * that counts messages and their bytes on the wire, one of them (`checks`:
 * 'first' or 'last') inflating every message it gets and comparing it, in
 * order, with the dashboard cycle; then the measurement window, the wait for
 * what is still in flight, the closing handshakes and the result (finish).
 * What a job sends, and when, is its own (connect).
 */
export class DeflateLoad {
  #job
  #what
  #serverClosed
  #checkedIndex
  #inflater
  #checkedReader = null
  #abort = new AbortController()
  #running = true
  #failure = null
  #checked = 0

  /**
   * `what` names a message in failures ('reply 3: ...'); `serverClosed` is
   * the failure when the server sends a close frame during the run.
   */
  static async open (job, count, { checks, what, serverClosed }) {
    const { connections, agreement } = await openAgreed(job.port, job.path, count)
    return new DeflateLoad(job, connections, agreement, { checks, what, serverClosed })
  }

  constructor (job, connections, agreement, { checks, what, serverClosed }) {
    this.#job = job
    this.#what = what
    this.#serverClosed = serverClosed
    this.connections = connections
    this.agreement = agreement
    this.cycle = new FrameCycle(DASHBOARD_MESSAGES, agreement, job.inflight)
    this.counters = { messages: 0, wireBytes: 0, compressed: 0 }
    this.#inflater = new MessageInflater(agreement)
    this.#checkedIndex = checks === 'last' ? connections.length - 1 : 0
  }

  /** False once the measurement window has ended. */
  get running () {
    return this.#running
  }

  /** Records the first failure and cuts the window short. */
  fail = (reason) => {
    this.#failure ??= reason
    this.#abort.abort()
  }

  /**
   * Attaches a reader to every connection and lets it flow. `setup(socket,
   * index)` runs once the bytes behind the 101 are read, may send, and
   * returns what to do when a read completes messages: `(completed) => {}`.
   */
  connect (setup) {
    this.connections.forEach(({ socket, leftover }, index) => {
      const checks = index === this.#checkedIndex
      const reader = new DeflateFrameReader({
        counters: this.counters,
        inflater: checks ? this.#inflater : null,
        // Messages come in the order sent: the nth is message n of the cycle.
        onMessage: (opcode, bytes, compressed, error) => {
          const problem = replyProblem(DASHBOARD_MESSAGES[this.#checked % this.cycle.length], opcode, bytes, compressed, error)
          if (problem !== null) this.fail(`${this.#what} ${this.#checked + 1}: ${problem}`)
          this.#checked++
        },
        onControl: (opcode, data) => {
          if (handleControl(socket, opcode, data) && this.#running) this.fail(this.#serverClosed)
        },
        onError: this.fail
      })
      if (checks) this.#checkedReader = reader
      let onMessages = null
      socket.on('data', (chunk) => {
        const completed = reader.push(chunk)
        if (completed !== 0) onMessages(completed)
      })
      socket.on('error', (error) => { if (this.#running) this.fail(error.message) })
      socket.on('close', () => { if (this.#running) this.fail('connection closed by the server') })
      reader.push(leftover)
      onMessages = setup(socket, index)
      socket.resume()
    })
  }

  /**
   * Runs the warm-up and the measurement window, waits up to `drainMs` for
   * `drained()` and for the checked connection's last inflates, closes every
   * connection and returns the job's result; `noneChecked` is the failure
   * when the checked connection got nothing.
   */
  async finish ({ drained, drainMs, noneChecked }) {
    const { warmupMs, durationMs, serverPid, clockTicks } = this.#job
    let atStart = null
    let atEnd = null
    const { start, end } = await measureWindow({ serverPid, warmupMs, durationMs, signal: this.#abort.signal }, (on) => {
      if (on) atStart = { ...this.counters }
      else atEnd = { ...this.counters }
    })
    this.#running = false
    // A starved smoke window may end before the first message.
    if (this.#checked === 0 && this.#failure === null) await waitFor(() => this.#checked > 0 || this.#failure !== null, CAPTURE_WAIT_MS)
    await waitFor(drained, drainMs)
    await waitFor(() => this.#checkedReader.pending === 0, CAPTURE_WAIT_MS)
    await closeAll(this.connections.map((connection) => connection.socket))
    this.#inflater.close()

    if (this.#failure !== null) return { failure: this.#failure }
    if (this.#checked === 0) return { failure: noneChecked }
    if (atStart === null || atEnd === null) return { failure: 'the measurement window did not complete' }
    const usage = usageBetween(start, end, clockTicks)
    const messages = atEnd.messages - atStart.messages
    return {
      metrics: {
        rate: messages / usage.seconds,
        wireBytes: messages === 0 ? null : (atEnd.wireBytes - atStart.wireBytes) / messages
      },
      compressedShare: messages === 0 ? null : (atEnd.compressed - atStart.compressed) / messages,
      checked: this.#checked,
      agreement: this.agreement,
      generatorCpu: usage.generatorCpu,
      serverCpu: usage.serverCpu,
      otherCpu: usage.otherCpu
    }
  }
}
