/**
 * Every default setting, each stated once with its reason. The plugin merges
 * these with plugin-level and route-level settings (fastify/settings.ts); the
 * connection falls back to them when driven directly (client role, tests).
 */
import { DEFAULT_MAX_MESSAGE_PIECES, DEFAULT_MIN_AVERAGE_PIECE_SIZE } from './protocol/piece-limit.js'

export const DEFAULTS = {
  /**
   * Largest incoming message (sum of its fragments), in bytes: 1 MiB. Chat,
   * JSON and control traffic fit many times over; a peer cannot make one
   * connection buffer more than this (plus the read in progress) for a message.
   */
  maxMessageSize: 1024 * 1024,
  /** Pieces (reads × frames) a message may arrive in: 1024, then one per 256 bytes; reasons in protocol/piece-limit.ts. */
  maxMessagePieces: DEFAULT_MAX_MESSAGE_PIECES,
  minAveragePieceSize: DEFAULT_MIN_AVERAGE_PIECE_SIZE,
  /**
   * Milliseconds to wait for the peer's half of the closing handshake: 5 s.
   * A live peer answers within a round trip; a dead one must not hold the socket.
   */
  closeTimeout: 5000,
  /**
   * `send` returns false once this many bytes wait to be written: 1 MiB.
   * Large enough that a 1 MiB message does not flip it on an idle connection.
   */
  highWaterMark: 1024 * 1024,
  /**
   * Bytes that may wait to be written before `onBufferFull` applies: 4 MiB.
   * Four times `highWaterMark`, so a route that respects `send()`'s return
   * value (or `drain`) never reaches it even when it overshoots by a few
   * messages, while a peer that stops reading costs at most 4 MiB plus one
   * message instead of everything a careless route sends it.
   */
  maxBufferedAmount: 4 * 1024 * 1024,
  /**
   * Past `maxBufferedAmount`, drop the connection (1008). Closing is the
   * default because the careless route — an echo or a broadcast that ignores
   * `send()`'s return value — is the common one, and refusing sends it never
   * checks would leave it silently losing messages on a stuck connection.
   */
  onBufferFull: 'close' as 'close' | 'refuse',
  /**
   * Upgrades open at once (this route, or the whole plugin at plugin level):
   * unlimited. Each connection's memory is already bounded by the limits
   * above, so what a count may be depends on the machine's memory and file
   * descriptors, which the plugin cannot know; set it from a capacity test.
   */
  maxConnections: Infinity,
  /**
   * Milliseconds from the upgrade request's head to the 101 (your hooks,
   * schema validation, auth lookups): 10 s. Far beyond any healthy auth or
   * database call; a hook that hangs must not hold the socket (and a file
   * descriptor) for ever, and Node's requestTimeout no longer applies once
   * the request is handed to the `upgrade` event.
   */
  handshakeTimeout: 10_000,
  /** Reply to pings automatically. */
  autoPong: true,
  /** Heartbeat pings: off (0), since the right interval depends on the proxies in between. */
  heartbeatInterval: 0,
  /** Keep `conn.request` for the connection's lifetime: what handlers expect from Fastify. */
  retainRequest: true
}

/**
 * Pings that may arrive while an earlier auto-pong is still unwritten (the
 * peer is not reading) before the connection is dropped with 1008. They are
 * coalesced into one owed pong, so memory is not the concern; CPU is. A
 * well-behaved peer pings every few seconds, so 1,000 unanswered pings means
 * minutes of stall at any sane rate, or a flood.
 */
export const MAX_OWED_PINGS = 1000

/**
 * Messages held for a handler that is not listening yet (an async handler
 * still awaiting) pause reading once they cost more than `maxMessageSize` or
 * this, whichever is larger: 1 MiB. One message of the largest allowed size
 * is held without pausing; the floor lets a route of small messages take a
 * burst while its handler awaits. Not a setting: the connection's
 * `maxPendingBytes` option overrides it where a connection is made directly.
 */
export const PENDING_BYTES_FLOOR = 1024 * 1024

/**
 * permessage-deflate (RFC 7692), when a route turns `compression` on; off by
 * default (`DEFAULTS`-style reasons here, the measured costs in README):
 * compressing costs CPU on every message, and compressing data a peer can
 * influence together with secrets in the same message leaks them (the
 * BREACH/CRIME class of attacks), so it is each application's decision.
 */
export const COMPRESSION_DEFAULTS = {
  /**
   * Messages under 1 KiB are sent as they are: deflate's framing and the
   * loss of a fresh context leave little to gain on them, and most chat and
   * control messages are that small, so they skip zlib entirely.
   */
  threshold: 1024,
  /**
   * zlib level 1..9 for outgoing messages: 6, zlib's own default (what ws
   * uses), a good ratio on JSON at a CPU cost far below 9.
   */
  level: 6,
  /** zlib memLevel: 8, zlib's default; 9 gains little and costs 128 KiB more per compressor. */
  memLevel: 8,
  /**
   * The server starts every message with a fresh context (it asks for
   * `server_no_context_takeover`): no compressor is kept per connection —
   * with one, zlib holds about 256 KiB per connection for window 15 — and a
   * broadcast is compressed once for every receiver instead of once per receiver.
   */
  serverContextTakeover: false,
  /**
   * Clients are asked to start every message with a fresh context
   * (`client_no_context_takeover`), so no inflater (about 44 KiB at window
   * 15) is kept per connection between messages: an idle compressed
   * connection costs no zlib memory.
   */
  clientContextTakeover: false,
  /** Windows of 15 bits (32 KiB), the largest: the best ratio; with no context kept it is only held while a message is being processed. */
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  /**
   * zlib jobs on libuv's thread pool at once, across all connections: 2,
   * half of the pool's default 4 threads, so compression never starves file
   * system and DNS work that shares the pool.
   */
  concurrency: 2
}

/** The Redis adapter's defaults (adapters/redis.ts), each with its reason. */
export const REDIS_ADAPTER_DEFAULTS = {
  /**
   * Prepended to a topic to make its Redis channel: `'ws:'`. Keeps the
   * adapter's channels apart from the app's own pub/sub on the same Redis;
   * give each app its own prefix when several share one.
   */
  prefix: 'ws:',
  /**
   * Milliseconds `app.ready()` waits for the adapter's Redis connections:
   * 10 s. Past it the app starts anyway, serving its own subscribers, and the
   * adapter joins as soon as Redis answers: an instance must not be kept down
   * by Redis, only its cross-instance delivery.
   */
  readyTimeout: 10_000,
  /**
   * (publisher, topic) pairs whose last sequence number is remembered, to
   * drop a publish delivered twice (a client resending after a reconnect):
   * 10,000, about 1 MB. Past it the least recently seen pair is forgotten;
   * its next publish is delivered in any case, only a duplicate of it would
   * go unnoticed.
   */
  dedupeEntries: 10_000,
  /** Channels per SUBSCRIBE when restoring subscriptions after a reconnect: 1,000 keeps each command small. */
  resubscribeBatch: 1000,
  /**
   * Bytes of publishes handed to Redis and not yet answered, counting each
   * command's payload plus `publishOverhead`: 8 MiB. Redis answers a PUBLISH
   * within a round trip, so a backlog this size means it stopped answering
   * (hung, or a network partition without a reset) while the connection
   * still looks up; past it, publishes are dropped and counted like an
   * outage's, instead of growing memory and arriving minutes late.
   */
  maxPendingBytes: 8 * 1024 * 1024,
  /** What one pending command costs the client beyond its payload, about (ioredis's Command object and its promise). */
  publishOverhead: 256
} as const
