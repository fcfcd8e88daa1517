// Payloads are described by the run (kind and size) and built here, so large
// buffers never travel over IPC.

import { isDeepStrictEqual } from 'node:util'
import { JSON_UNSUPPORTED, sampleChatMessage } from '../lib/json-message.mjs'
import { OPCODE } from '../../test/helpers/wire.cjs'

/**
 * Returns { opcode, payload, check(opcode, bytes) }. `check` answers 'ok',
 * 'unsupported' (the server said it has no such API) or a reason it failed.
 */
export function buildPayload ({ kind, size }) {
  if (kind === 'json') {
    const payload = Buffer.from(JSON.stringify(sampleChatMessage))
    return {
      opcode: OPCODE.text,
      payload,
      check (opcode, bytes) {
        const text = bytes.toString('utf8')
        if (text === JSON_UNSUPPORTED) return 'unsupported'
        if (opcode !== OPCODE.text) return `expected a text frame, got opcode ${opcode}`
        let parsed
        try {
          parsed = JSON.parse(text)
        } catch {
          return `reply is not JSON: ${text.slice(0, 80)}`
        }
        // Key order may legitimately differ (a schema-driven serializer), so compare values.
        return isDeepStrictEqual(parsed, sampleChatMessage) ? 'ok' : `reply differs: ${text.slice(0, 80)}`
      }
    }
  }
  // A repeating non-constant pattern, so a byte moved by an off-by-one shows.
  const payload = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) payload[i] = (i * 31 + 7) & 0xff
  return {
    opcode: OPCODE.binary,
    payload,
    check (opcode, bytes) {
      if (opcode !== OPCODE.binary) return `expected a binary frame, got opcode ${opcode}`
      if (bytes.length !== size) return `expected ${size} bytes, got ${bytes.length}`
      return bytes.equals(payload) ? 'ok' : 'echoed bytes differ from the bytes sent'
    }
  }
}
