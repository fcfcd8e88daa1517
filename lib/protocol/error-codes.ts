/**
 * Every `code` an error of this library can carry, with the close code the
 * connection ends with (null: the error ends no connection, or there was
 * none yet) and what it means. README's "Errors and their codes" lists the
 * same rows (test/protocol/error-codes.test.ts keeps the two in step).
 *
 * Where the `ws` library names the same condition, the code is ws's name, so
 * an application that branches or alerts on ws's codes keeps working. The
 * `meaning` is also the message of an error created without one of its own.
 */
export interface ErrorCodeInfo {
  readonly closeCode: number | null
  readonly meaning: string
}

export const ERROR_CODES = {
  // --- The peer broke RFC 6455: the connection fails with a close frame carrying `closeCode`.
  WS_ERR_UNEXPECTED_RSV_2_3: { closeCode: 1002, meaning: 'RSV2 and RSV3 must be 0: no negotiated extension defines them' },
  WS_ERR_UNEXPECTED_RSV_1: { closeCode: 1002, meaning: 'RSV1 must be 0: no extension was negotiated' },
  WS_ERR_INVALID_OPCODE: { closeCode: 1002, meaning: 'a reserved opcode, a continuation frame with no message in progress, or a new data frame while a fragmented message is still open' },
  WS_ERR_EXPECTED_FIN: { closeCode: 1002, meaning: 'control frames must not be fragmented (FIN = 0)' },
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: { closeCode: 1002, meaning: 'control frame payload exceeds 125 bytes' },
  WS_ERR_EXPECTED_MASK: { closeCode: 1002, meaning: 'frames from a client must be masked' },
  WS_ERR_UNEXPECTED_MASK: { closeCode: 1002, meaning: 'frames from a server must not be masked' },
  WS_ERR_UNEXPECTED_LENGTH_MSB: { closeCode: 1002, meaning: 'the most significant bit of a 64-bit payload length must be 0' },
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: { closeCode: 1009, meaning: 'payload length exceeds 2^53 - 1 bytes' },
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: { closeCode: 1009, meaning: 'message exceeds maxMessageSize' },
  WS_ERR_INVALID_UTF8: { closeCode: 1007, meaning: 'text message is not valid UTF-8' },
  WS_ERR_INVALID_CLOSE_CODE: { closeCode: 1002, meaning: 'invalid close code' },
  WS_ERR_MESSAGE_TOO_FRAGMENTED: { closeCode: 1008, meaning: 'message arrived in more pieces than maxMessagePieces and minAveragePieceSize allow' },
  WS_ERR_EXTENSION_DECODE: { closeCode: 1007, meaning: 'the negotiated extension could not decode a message' },
  WS_ERR_EXTENSION_ENCODE: { closeCode: 1011, meaning: 'the negotiated extension failed to encode a message' },

  // --- The connection: limits, timers, and calls it cannot carry out.
  WS_ERR_BUFFER_FULL: { closeCode: 1008, meaning: 'maxBufferedAmount bytes are waiting to be written: the peer is not reading' },
  WS_ERR_PING_FLOOD: { closeCode: 1008, meaning: 'the peer keeps pinging without reading the pongs' },
  WS_ERR_CLOSE_TIMEOUT: { closeCode: 1006, meaning: 'the closing handshake did not finish within closeTimeout' },
  WS_ERR_HEARTBEAT_TIMEOUT: { closeCode: 1006, meaning: 'the peer sent nothing for a whole heartbeatInterval' },
  WS_ERR_NOT_OPEN: { closeCode: null, meaning: 'the connection is not open: it is closing or closed' },
  WS_ERR_CLOSED_BEFORE_SENT: { closeCode: null, meaning: 'the connection closed before the message was sent' },
  WS_ERR_CLOSED_ABNORMALLY: { closeCode: null, meaning: 'createWebSocketStream: the connection closed with a code other than 1000 or 1005 before the stream ended (that code is the error\'s closeCode)' },
  WS_ERR_INVALID_ARGUMENT: { closeCode: null, meaning: 'an argument the call cannot use' },
  WS_ERR_ADAPTER_BACKLOG: { closeCode: null, meaning: 'Redis adapter: a publish was dropped because Redis has not answered maxPendingBytes of earlier ones (the diagnostics channel\'s `error`)' },
  WS_ERR_NO_TOPICS: { closeCode: null, meaning: 'subscribe, unsubscribe, isSubscribed, topics or publish on a connection the plugin did not accept (a client connection): topics belong to an app' },

  // --- The opening handshake.
  WS_ERR_HANDSHAKE_TIMEOUT: { closeCode: null, meaning: 'the upgrade request was not answered within handshakeTimeout' },
  WS_ERR_UPGRADE_REFUSED: { closeCode: null, meaning: 'the server answered the upgrade with a status other than 101' },
  WS_ERR_INVALID_UPGRADE_RESPONSE: { closeCode: null, meaning: 'the server\'s answer to the upgrade breaks RFC 6455 §4.1' },
  WS_ERR_UPGRADE_ABORTED: { closeCode: null, meaning: 'the server closed the connection during the handshake' },
  WS_ERR_NO_EXTENDED_CONNECT: { closeCode: null, meaning: 'connectOverHttp2: the server did not allow extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441)' },
  WS_ERR_INVALID_SUBPROTOCOL: { closeCode: null, meaning: 'the route\'s protocols function chose a subprotocol the client did not offer' },
  WS_ERR_INVALID_REQUEST_BODY: { closeCode: null, meaning: 'a request that came through the upgrade event has a malformed body (answered 400, or 431 for trailers)' },

  // --- Registration: thrown by `register` or by adding a route.
  WS_ERR_INVALID_OPTION: { closeCode: null, meaning: 'an option has a value it cannot take' },
  WS_ERR_UNKNOWN_OPTION: { closeCode: null, meaning: 'an option this plugin does not have (unknown, or ws-only)' },
  WS_ERR_INVALID_ROUTE: { closeCode: null, meaning: 'a WebSocket route on a method other than GET, or without a handler' },
  WS_ERR_ALREADY_REGISTERED: { closeCode: null, meaning: 'the plugin was registered twice on one server' },

  // --- JSON messages (lib/messages): Fastify's code style; `closeCode` is what the 'close' policy closes with.
  FST_ERR_WS_INVALID_JSON: { closeCode: 1007, meaning: 'the text is not JSON, or it carries a __proto__ / constructor.prototype key' },
  FST_ERR_VALIDATION: { closeCode: 1008, meaning: 'the message does not match schema.message' },
  FST_ERR_WS_UNKNOWN_MESSAGE_TYPE: { closeCode: 1008, meaning: 'the discriminator names no variant of the schema, or no handler was given for it' },
  FST_ERR_WS_BINARY_MESSAGE: { closeCode: 1003, meaning: 'a binary message on a JSON route (onBinaryMessage: \'error\')' },
  FST_ERR_WS_SERIALIZATION: { closeCode: null, meaning: 'sendJson: the message has no JSON text, or its discriminator names no variant of schema.outgoing' },
  FST_ERR_WS_ASYNC_VALIDATOR: { closeCode: null, meaning: 'a validator of schema.message returned a promise: asynchronous validation is not supported' },
  FST_ERR_WS_JSON_CONSUMER: { closeCode: null, meaning: 'a second onJson or messages() on one connection' },
  FST_ERR_SCH_VALIDATION_BUILD: { closeCode: null, meaning: 'schema.message did not compile (Fastify\'s code for a body schema)' },
  FST_ERR_SCH_SERIALIZATION_BUILD: { closeCode: null, meaning: 'schema.outgoing did not compile (Fastify\'s code for a response schema)' }
} as const satisfies Record<string, ErrorCodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

/** The codes that end a connection with a close frame or a close code: the ones a ProtocolError can carry. */
export type ClosingErrorCode = { [K in ErrorCode]: typeof ERROR_CODES[K]['closeCode'] extends number ? K : never }[ErrorCode]
