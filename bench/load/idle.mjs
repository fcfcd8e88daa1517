// Idle connections held open while the server's memory is measured. Two
// jobs, because the run reads the server's RSS between them. `job.transport`
// (transports.mjs) holds them over TLS or as streams of one HTTP/2 session.

import { closeAll, handleControl, openMany } from './connect.mjs'
import { encodeFrame } from '../../test/helpers/wire.cjs'
import { MessageReader } from './message-reader.mjs'
import { buildPayload } from './payloads.mjs'
import { openTransport } from './transports.mjs'
import { CAPTURE_WAIT_MS, waitFor } from './window.mjs'

let held = null
let heldTransport = null

export async function openIdle (job) {
  if (held !== null) await closeIdle({})
  const transport = await openTransport(job)
  let connections
  try {
    connections = await openMany(job.port, job.path, job.count, 100, null, transport)
  } catch (error) {
    await transport.close()
    throw error
  }
  heldTransport = transport
  held = connections.map(({ socket, leftover }, index) => {
    const entry = { socket, verdict: null, lost: false }
    // Only the first connection is later used to prove the server still echoes.
    const reader = new MessageReader({
      capture: index === 0,
      onCapture (opcode, bytes) { entry.verdict = entry.check?.(opcode, bytes) ?? 'unexpected message' },
      onControl (opcode, data) { if (handleControl(socket, opcode, data)) entry.lost = true }
    })
    return holdIdle(entry, reader, leftover)
  })
  return { opened: held.length, transport: transport.stats() }
}

export async function closeIdle (job) {
  const entries = held
  const transport = heldTransport
  held = null
  heldTransport = null
  const result = await releaseIdle(entries, job, async (probe) => {
    const { opcode, payload, check } = buildPayload(job.payload)
    probe.check = check
    probe.socket.write(encodeFrame(opcode, payload))
    await waitFor(() => probe.verdict !== null, CAPTURE_WAIT_MS)
    return probe.verdict === 'ok' ? null : probe.verdict ?? 'no echo on an idle connection'
  })
  await transport?.close()
  return result
}

// Shared with the compressed idle job (deflate-idle.mjs): an entry is
// { socket, lost, ... }, `lost` once the server closed or broke its socket.

/** Feeds the entry's socket to `reader` (after the bytes behind the 101) and marks the entry lost when the socket errs or closes. */
export function holdIdle (entry, reader, leftover) {
  const { socket } = entry
  socket.on('data', (chunk) => reader.push(chunk))
  socket.on('error', () => { entry.lost = true })
  socket.on('close', () => { entry.lost = true })
  reader.push(leftover)
  socket.resume()
  return entry
}

/**
 * Ends the held idle connections (`entries`, null when none are open): a
 * failure if the server closed any; with `job.verify`, `probe(entries[0])`
 * proves the first still echoes (it resolves with what is wrong, or null);
 * then a closing handshake on every one, and `release(entry)` for each.
 */
export async function releaseIdle (entries, job, probe, release = null) {
  if (entries === null) return { failure: 'no idle connections are open' }
  const lost = entries.filter((entry) => entry.lost).length
  let failure = lost > 0 ? `${lost} idle connections were closed by the server` : null
  if (job.verify && failure === null) failure = await probe(entries[0])
  await closeAll(entries.map((entry) => entry.socket), 5000)
  if (release !== null) for (const entry of entries) release(entry)
  return failure === null ? { closed: entries.length } : { failure }
}
