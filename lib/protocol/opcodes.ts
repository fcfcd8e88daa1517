export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

export type Opcode = typeof Opcode[keyof typeof Opcode]

export function isControlOpcode (opcode: number): boolean {
  return (opcode & 0x8) !== 0
}

export function isKnownOpcode (opcode: number): boolean {
  return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa)
}
