// The error family lives in the protocol core (lib/protocol/errors.ts), which uses it too.
export { WebSocketError } from './protocol/errors.js'
