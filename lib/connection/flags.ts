/**
 * A connection's state bits, in one number (Outbox#flags) instead of a dozen
 * booleans on every idle connection. Listed together so no two layers pick
 * the same bit; each comment names the layer that owns the bit.
 */

// outbox.ts: sends made while a read is handled go out in one write when it ends.
export const READING = 1
// outbox.ts: a flush is queued for the next tick.
export const FLUSH_SCHEDULED = 1 << 1
// outbox.ts: `send` returned false, so a `drain` is owed once the backlog clears.
export const NEED_DRAIN = 1 << 2
// outbox.ts: an auto-pong waits in the batch for the next flush.
export const PONG_QUEUED = 1 << 3
// outbox.ts: the write carrying an auto-pong has not reached the kernel yet.
export const PONG_IN_FLIGHT = 1 << 4
// outbox.ts: `onBufferFull: 'refuse'` (otherwise 'close').
export const REFUSE_WHEN_FULL = 1 << 5

// inbox.ts: the route handler has not finished (an async handler still
// awaiting): messages and the `close` event are held for it.
export const HANDLER_RUNNING = 1 << 6
// inbox.ts: the handler has finished, so messages nobody listens to are
// dropped: a send-only route cannot be made to buffer.
export const DROP_UNCONSUMED = 1 << 7
// inbox.ts: the transport closed, and `close` waits for a listener or for held messages.
export const CLOSE_DEFERRED = 1 << 8
// inbox.ts: `close` was emitted; no event follows it.
export const CLOSE_EMITTED = 1 << 9

// internal.ts: answer pings (the `autoPong` setting).
export const AUTO_PONG = 1 << 10
// internal.ts: a heartbeat ping went out and nothing has come in since.
export const AWAITING_PEER = 1 << 11
