/**
 * The sans-I/O RFC 6455 core: no sockets, no timers, no Fastify.
 * Drive it from any transport: feed bytes to `WebSocketProtocol#receive`,
 * write what its handler's `write` receives.
 */
export { CloseCode, MAX_CLOSE_REASON_BYTES, isValidWireCloseCode } from './close-codes.js'
export { ProtocolError, WebSocketError } from './errors.js'
export { ERROR_CODES, type ClosingErrorCode, type ErrorCode, type ErrorCodeInfo } from './error-codes.js'
export type { MessageExtension } from './extension.js'
export { FrameParser, type FrameParserOptions, type FrameParserSink, type Role } from './frame-parser.js'
export { encodeFrame, encodeCloseFrame, encodeControlFrame, toBuffer, type FrameOptions } from './frame-writer.js'
export {
  WEBSOCKET_GUID, WEBSOCKET_VERSION, buildUpgradeResponse, computeAccept, isValidKey, selectSubprotocol, validateHandshake,
  type HandshakeAccepted, type HandshakeRefused, type HandshakeRequest, type HandshakeResult, type SubprotocolSelector,
  type UpgradeResponseOptions
} from './handshake.js'
export { buildClientRequest, generateKey, parseResponseHead, validateServerResponse, type ClientRequestOptions, type ResponseHead } from './client-handshake.js'
export {
  EXTENDED_CONNECT_PROTOCOL, extendedConnectRequestHeaders, extendedConnectResponseHeaders, validateExtendedConnect, validateExtendedConnectResponse,
  type ExtendedConnectOptions, type Http2RequestHeaders
} from './extended-connect.js'
export { formatExtensions, headerHasToken, isToken, parseExtensions, parseSubprotocols, type ExtensionOffer } from './header-lists.js'
export { maskInto, unmaskInPlace } from './mask.js'
export {
  PERMESSAGE_DEFLATE, acceptDeflateResponse, deflateOffer, negotiateDeflate, type DeflateParams, type DeflatePreferences
} from './permessage-deflate.js'
export { Opcode, isControlOpcode, isKnownOpcode } from './opcodes.js'
export { DEFAULT_MAX_MESSAGE_PIECES, DEFAULT_MIN_AVERAGE_PIECE_SIZE, type PieceLimitOptions } from './piece-limit.js'
export { ReadyState, WebSocketProtocol, type ProtocolHandler, type ProtocolOptions } from './protocol.js'
export { truncateReason } from './close-payload.js'
export { Utf8Validator, isValidUtf8 } from './utf8.js'
