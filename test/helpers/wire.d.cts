// Types of wire.cjs (see there).

export declare const OPCODE: Readonly<{ continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa }>

export interface EncodeOptions {
  fin?: boolean
  rsv1?: boolean
  rsv2?: boolean
  rsv3?: boolean
  /** true (default): a random key; a 4-byte key: that key; false: unmasked. */
  mask?: boolean | Uint8Array
  /** Force the 7-, 16- or 64-bit length form instead of the shortest. */
  lengthBits?: 7 | 16 | 64
  /** The value of the length field, whatever the payload. */
  length?: number
}

export declare function encodeFrame (opcode: number, payload?: Uint8Array | string, options?: EncodeOptions): Buffer

export declare function applyMask (data: Uint8Array, key: Uint8Array, phase?: number): Buffer

export declare function closePayload (code: number, reason?: Uint8Array | string): Buffer

export interface Frame {
  fin: boolean
  rsv1: boolean
  rsv2: boolean
  rsv3: boolean
  opcode: number
  masked: boolean
  key: Buffer | null
  /** Unmasked. */
  payload: Buffer
}

export declare function parseClose (frame: Pick<Frame, 'opcode' | 'payload'>): { code: number, reason: string }

export declare function decodeFrame (data: Buffer, offset?: number): { frame: Frame, size: number } | null

export declare function decodeFrames (data: Buffer): Frame[]

export declare class FrameReader {
  keepData: boolean
  constructor (onFrame: (opcode: number, fin: boolean, payload: Buffer | null, length: number) => void, options?: { keepData?: boolean })
  push (chunk: Buffer): void
}
