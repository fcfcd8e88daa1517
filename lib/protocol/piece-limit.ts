import { invalidArgument, protocolError, type ProtocolError } from './errors.js'

/**
 * How finely a data message may be cut up on its way in. A piece is a
 * stretch of one frame's payload that arrived in one read (`push`), or an
 * empty data frame; control frames between fragments are not pieces of the
 * message. A message in one frame and one read is one piece.
 */
export interface PieceLimitOptions {
  /** Pieces a message may arrive in whatever their size (default 1024). Infinity: no cap. */
  maxMessagePieces?: number
  /**
   * Bytes each further piece must bring on average (default 256): a message
   * fails with 1008 once pieces > maxMessagePieces + bytes / minAveragePieceSize.
   * 0: no cap.
   */
  minAveragePieceSize?: number
}

// Why these defaults. A legitimate peer's TCP reads carry at least a segment's
// worth (~1.4 KiB) or coalesce into more; browsers send each message as one
// frame; streaming clients fragment into KiB-sized frames. 256 bytes per piece
// is several times below all of those. 1024 pieces leave slow trickles (a
// message produced in small bits over time) alone whatever their size. A peer
// past both sends a few bytes per read or per frame, which makes the server
// pay a read, a frame header or a piece of bookkeeping for each few bytes.
export const DEFAULT_MAX_MESSAGE_PIECES = 1024
export const DEFAULT_MIN_AVERAGE_PIECE_SIZE = 256

/** The options checked, defaults filled in: [maxMessagePieces, minAveragePieceSize]. */
export function pieceLimits (options: PieceLimitOptions): [number, number] {
  const max = options.maxMessagePieces ?? DEFAULT_MAX_MESSAGE_PIECES
  const average = options.minAveragePieceSize ?? DEFAULT_MIN_AVERAGE_PIECE_SIZE
  // At least 1, so that a message in one piece, which is never counted, is always within it.
  if (!(max >= 1) || (Number.isFinite(max) && !Number.isInteger(max))) {
    throw invalidArgument(new RangeError(`maxMessagePieces must be an integer of at least 1, or Infinity; got ${max}`))
  }
  if (!(average >= 0)) {
    throw invalidArgument(new RangeError(`minAveragePieceSize must be a number of at least 0; got ${average}`))
  }
  return [max, average]
}

/** Whether a message now in `pieces` pieces holding `received` bytes is past the cap. */
export function pastPieceLimit (pieces: number, received: number, max: number, average: number): boolean {
  // (pieces - max) × average > received, multiplied out so that 0 and Infinity need no special case.
  const extra = pieces - max
  return extra > 0 && extra * average > received
}

export function tooFragmented (pieces: number, received: number, max: number, average: number): ProtocolError {
  return protocolError('WS_ERR_MESSAGE_TOO_FRAGMENTED',
    `message arrived in ${pieces} pieces for ${received} bytes: past ${max} pieces, ` +
    `at least ${average} bytes per piece on average are required`)
}
