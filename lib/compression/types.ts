// permessage-deflate (RFC 7692): the shapes shared by negotiation
// (lib/protocol/permessage-deflate.ts, sans-I/O), the codec
// (lib/compression/*, zlib) and the Fastify glue.

/** The agreed parameters: defined with the negotiation, which the protocol core owns. */
export type { DeflateParams } from '../protocol/permessage-deflate.js'

/** The `compression` setting as given: `false`, `true`, or preferences. */
export interface CompressionOptions {
  /** Messages smaller than this many bytes are sent uncompressed. */
  threshold?: number
  /** zlib level 0..9 for outgoing messages. */
  level?: number
  /** zlib memLevel 1..9 for outgoing messages. */
  memLevel?: number
  /** Ask to keep the server's context across messages (better ratio, zlib state kept per connection). */
  serverContextTakeover?: boolean
  /** Let clients keep their context across messages (better ratio, an inflater kept per connection). */
  clientContextTakeover?: boolean
  /** Largest window the server compresses with, 9..15. */
  serverMaxWindowBits?: number
  /** Largest window the server accepts clients compressing with, 8..15. */
  clientMaxWindowBits?: number
  /** Most zlib operations running at once on the thread pool, across all connections. */
  concurrency?: number
}

/** `compression` resolved: every preference filled in and checked. */
export interface ResolvedCompression {
  threshold: number
  level: number
  memLevel: number
  serverContextTakeover: boolean
  clientContextTakeover: boolean
  serverMaxWindowBits: number
  clientMaxWindowBits: number
  concurrency: number
}
