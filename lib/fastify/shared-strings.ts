import type { IncomingHttpHeaders } from 'node:http'

/**
 * One copy of the request-head strings that every WebSocket upgrade repeats.
 *
 * Node's HTTP parser makes fresh strings for each request: `Host`,
 * `Upgrade`, `websocket`, `13`, `1.1`, the URL... An accepted upgrade keeps
 * its request (the default `retainRequest`) for the connection's life, so
 * with 10,000 idle connections there are 10,000 copies of each, about
 * 0.2 KiB per connection (the header names of `rawHeaders` and the values
 * clients all send alike). Swapping a string for an equal one already held
 * changes nothing a program can see, and frees the copy once the upgrade is done.
 *
 * The table is process-wide (upgrades of every app repeat the same strings)
 * and fills once: at most MAX_ENTRIES strings of at most MAX_LENGTH
 * characters, about 60 KiB at the very worst. Once full, further strings are
 * kept as they are, so a client sending made-up names or values can cost no
 * more than that, and the only loss is the saving.
 */
const MAX_ENTRIES = 512
// Longer strings are seldom repeated exactly (URLs with query strings, user agents are
// shorter); the bound is what keeps the worst case of the table small.
const MAX_LENGTH = 96

const table = new Map<string, string>()

/**
 * The values worth sharing: those a browser or client library sends the same
 * on every connection. Not `sec-websocket-key` (random per connection),
 * `cookie` or `authorization` (per user, and best not kept beyond the request
 * that sent them).
 */
const REPEATED_VALUES: ReadonlySet<string> = new Set([
  'host', 'connection', 'upgrade', 'sec-websocket-version', 'sec-websocket-extensions',
  'sec-websocket-protocol', 'origin', 'user-agent', 'accept-encoding', 'accept-language',
  'cache-control', 'pragma'
])

/** The copy of `value` the table holds, or `value` itself (now held, if there is room). */
export function shared (value: string): string {
  if (value.length > MAX_LENGTH) return value
  const held = table.get(value)
  if (held !== undefined) return held
  if (table.size < MAX_ENTRIES) table.set(value, value)
  return value
}

/**
 * Replaces, in place, the names in `rawHeaders` and the values of the
 * REPEATED_VALUES headers (in `rawHeaders` and `headers`, which share the
 * parser's strings) by their shared copies.
 */
export function shareHeaderStrings (rawHeaders: string[], headers: IncomingHttpHeaders): void {
  // rawHeaders alternates name, value; an odd length (never from Node's parser) leaves the last alone.
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] = shared(rawHeaders[i]!)
    if (REPEATED_VALUES.has(name.toLowerCase())) rawHeaders[i + 1] = shared(rawHeaders[i + 1]!)
  }
  // A hook may have swapped in headers of its own, frozen ones even: those stay as they are.
  if (Object.isFrozen(headers)) return
  for (const name of REPEATED_VALUES) {
    const value = headers[name]
    if (typeof value === 'string') headers[name] = shared(value)
  }
}

/** @internal How many strings the table holds, for tests. */
export function sharedStringCount (): number {
  return table.size
}

/** @internal The table's bounds, for tests. */
export const SHARED_STRING_LIMITS = { entries: MAX_ENTRIES, length: MAX_LENGTH } as const
