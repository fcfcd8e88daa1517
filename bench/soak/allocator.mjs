// The soak's RSS verdict compares readings taken after both allocators have
// given back their free pages: V8 (a last-resort GC, in the server) and
// glibc's malloc, whose main arena keeps freed chunks below a chunk still in
// use and returns them only on malloc_trim, which Node never calls. The run
// asks gdb to call malloc_trim(0) in the server, at the warmed baseline and
// at the end, each time after the untrimmed reading (see bench/soak.mjs).

import { spawnSync } from 'node:child_process'

export const GDB_INSTALL = 'apt-get install -y gdb'

/** Whether gdb can be run at all (checked once, at the start of the run). */
export function gdbInstalled () {
  const result = spawnSync('gdb', ['--version'], { encoding: 'utf8', timeout: 10_000 })
  return result.error === undefined && result.status === 0
}

/** Calls malloc_trim(0) in process `pid` through gdb. Returns { ok, why? }. */
export function mallocTrim (pid) {
  const result = spawnSync('gdb', ['-nx', '-batch', '-p', String(pid), '-ex', 'call (int) malloc_trim(0)'], {
    encoding: 'utf8',
    timeout: 60_000
  })
  if (result.error) {
    return { ok: false, why: result.error.code === 'ENOENT' ? `gdb is not installed (install it: ${GDB_INSTALL})` : result.error.message }
  }
  if (/^\$1 = [01]$/m.test(result.stdout)) return { ok: true }
  const lastLine = `${result.stderr}\n${result.stdout}`.trim().split('\n').pop()
  return { ok: false, why: `gdb could not call malloc_trim: ${lastLine}` }
}
