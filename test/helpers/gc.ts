// Garbage collection on demand, for tests that check nothing keeps an object
// alive (a WeakRef to it must clear).

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose_gc')
const gc = runInNewContext('gc') as () => void

/** Collections with turns of the event loop between them, so no stack frame still holds what should go. */
export async function collect (): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}
