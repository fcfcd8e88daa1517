/**
 * A per-message extension (RFC 6455 §9, e.g. permessage-deflate from RFC 7692)
 * after it has been negotiated for one connection. It owns the RSV1 bit:
 * incoming messages whose first frame had RSV1 set pass through `decode`,
 * outgoing messages it chooses to transform are sent with RSV1 set.
 *
 * Transforms complete through a callback so that an asynchronous codec
 * (zlib) fits; the protocol keeps messages in order while one is pending.
 */
export interface MessageExtension {
  readonly name: string
  /**
   * Reverses the extension's transform of one whole incoming message.
   * `maxSize` is the limit for the result; exceeding it must fail with
   * `new ProtocolError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', message, 1009)`.
   * A ProtocolError fails the connection as it is; any other error with
   * 1007 and the code `WS_ERR_EXTENSION_DECODE` (the error as its `cause`).
   */
  decode (data: Buffer, maxSize: number, done: (err: Error | null, result?: Buffer) => void): void
  /**
   * Transforms one outgoing message. Calls back with `transformed: false`
   * to send `data` as it is (for example, a payload too small to compress).
   * An error fails the connection with 1011; the send's callback and the
   * `error` event get it, coded `WS_ERR_EXTENSION_ENCODE` unless it is a
   * WebSocketError already.
   */
  encode (data: Buffer, done: (err: Error | null, result?: Buffer, transformed?: boolean) => void): void
  /**
   * The most bytes a transformed message may take on the wire when its
   * decoded size is at most `maxSize` (a compressor's framing can make
   * incompressible data a little larger). The parser refuses a transformed
   * message past this with 1009; without this member, past `maxSize`.
   */
  encodedSizeLimit? (maxSize: number): number
  /** Releases codec state when the connection ends. */
  close? (): void
}
