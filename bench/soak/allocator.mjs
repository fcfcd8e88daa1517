// When the soak's RSS check fails, one question decides what it means: is
// the excess memory the server still uses, or memory glibc's malloc has been
// given back and keeps (freed chunks in its main arena, below a chunk still
// in use, which it only returns on malloc_trim)? Node never calls
// malloc_trim, so the run asks gdb to call it once in the server, after the
// final reading, and measures again. The verdict stays on the reading taken
// before; this only explains it.

import { spawnSync } from 'node:child_process'

/** Calls malloc_trim(0) in process `pid` through gdb. Resolves { ok, why? }. */
export function mallocTrim (pid) {
  const result = spawnSync('gdb', ['-nx', '-batch', '-p', String(pid), '-ex', 'call (int) malloc_trim(0)'], {
    encoding: 'utf8',
    timeout: 60_000
  })
  if (result.error) return { ok: false, why: result.error.code === 'ENOENT' ? 'gdb is not installed' : result.error.message }
  if (/^\$1 = [01]$/m.test(result.stdout)) return { ok: true }
  const lastLine = `${result.stderr}\n${result.stdout}`.trim().split('\n').pop()
  return { ok: false, why: `gdb could not call malloc_trim: ${lastLine}` }
}
