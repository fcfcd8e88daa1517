/**
 * Where connections encode their small outgoing frames (Outbox#appendFrame):
 * one buffer shared by every connection of the process, filled front to
 * back. A connection's frames queued in a row sit side by side in it, so
 * its next write is one view of the slab: no buffer per frame, and no copy
 * to join them.
 *
 * Bytes are never rewritten: a view handed to the socket may wait there for
 * a slow peer. When the slab is full a new one replaces it, and the old one
 * lives as long as a view of it is unwritten. 8 KiB, Node's own Buffer pool
 * size, so a frame stuck behind a peer that does not read pins no more than
 * a pooled `Buffer.allocUnsafe` would.
 */
export const SLAB_SIZE = 8 * 1024

export const slab = {
  buffer: null as Buffer | null,
  /** Bytes of `buffer` handed out. */
  used: 0
}

/** Makes room for `size` bytes at `slab.used`, with a fresh slab if the current one lacks them. */
export function reserveSlab (size: number): Buffer {
  const current = slab.buffer
  if (current !== null && slab.used + size <= SLAB_SIZE) return current
  // Slow: a buffer of its own, not a slice of Node's pool.
  const fresh = Buffer.allocUnsafeSlow(SLAB_SIZE)
  slab.buffer = fresh
  slab.used = 0
  return fresh
}
