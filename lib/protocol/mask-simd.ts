/**
 * A 128-bit-lane XOR kernel in WebAssembly SIMD. JavaScript has no SIMD on
 * arbitrary memory, and its best word-at-a-time loop runs near 5–7 GB/s; the
 * kernel plus copying the data into and out of its (L1-sized) memory is
 * several times faster for payloads past a few hundred bytes.
 *
 * The module is assembled here from its instructions, so the bytes can be
 * read and checked against the WebAssembly binary format.
 *
 *   (func $mask (param $ptr i32) (param $len i32) (param $key i32)
 *     (local $keys v128) (local $end i32)
 *     keys = i32x4.splat(key)
 *     end = ptr + (len & ~15)
 *     while (ptr < end) { v128.store(ptr, v128.xor(v128.load(ptr), keys)); ptr += 16 })
 */

// The WebAssembly global, typed here as far as it is used (the project's `lib` has no DOM types).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: unknown }
}

const I32 = 0x7f
const V128 = 0x7b

function leb (value: number): number[] {
  const out: number[] = []
  do {
    let byte = value & 0x7f
    value >>>= 7
    if (value !== 0) byte |= 0x80
    out.push(byte)
  } while (value !== 0)
  return out
}

function name (text: string): number[] {
  return [...leb(text.length), ...Buffer.from(text, 'utf8')]
}

function section (id: number, content: number[]): number[] {
  return [id, ...leb(content.length), ...content]
}

const body = [
  0x02, 0x01, V128, 0x01, I32, // locals: $keys v128, $end i32
  0x20, 0x02, 0xfd, 0x11, 0x21, 0x03, // local.get $key; i32x4.splat; local.set $keys
  0x20, 0x00, 0x20, 0x01, 0x41, 0x70, 0x71, 0x6a, 0x21, 0x04, // $end = $ptr + ($len & -16)
  0x02, 0x40, // block
  0x03, 0x40, // loop
  0x20, 0x00, 0x20, 0x04, 0x4f, 0x0d, 0x01, // br_if 1 ($ptr >= $end, unsigned)
  0x20, 0x00, // address for the store
  0x20, 0x00, 0xfd, 0x00, 0x04, 0x00, // v128.load align=16
  0x20, 0x03, 0xfd, 0x51, // v128.xor with $keys
  0xfd, 0x0b, 0x04, 0x00, // v128.store align=16
  0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00, // $ptr += 16
  0x0c, 0x00, // br 0 (loop)
  0x0b, 0x0b, 0x0b // end loop, end block, end func
]

const moduleBytes = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  ...section(1, [0x01, 0x60, 0x03, I32, I32, I32, 0x00]), // type 0: (i32, i32, i32) -> ()
  ...section(3, [0x01, 0x00]), // function 0 has type 0
  ...section(5, [0x01, 0x00, 0x01]), // one memory, 1 page (64 KiB), no maximum
  ...section(7, [0x02, ...name('memory'), 0x02, 0x00, ...name('mask'), 0x00, 0x00]),
  ...section(10, [0x01, ...leb(body.length), ...body])
])

export interface SimdMasker {
  /** Scratch memory the kernel works in: 64 KiB, 16-byte aligned at 0. */
  readonly memory: Uint8Array
  /** XORs `memory[0 .. length & ~15]` with `key` (the mask as a little-endian word). */
  readonly mask: (ptr: number, length: number, key: number) => void
}

function instantiate (): SimdMasker | null {
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes), {})
    const exports = instance.exports as { memory: { buffer: ArrayBuffer }, mask: (ptr: number, length: number, key: number) => void }
    return { memory: new Uint8Array(exports.memory.buffer), mask: exports.mask }
  } catch {
    // No WebAssembly SIMD here (or WebAssembly disabled): the JavaScript loop serves.
    return null
  }
}

export const simdMasker: SimdMasker | null = instantiate()
