// Facts about the machine that shape the run and head its report.

import { spawnSync } from 'node:child_process'
import os from 'node:os'

function commandOutput (command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' })
  return result.status === 0 ? result.stdout.trim() : null
}

export function describeEnvironment () {
  const cpus = os.cpus()
  // Pinning needs taskset and a second core for the load generator.
  const pin = cpus.length >= 2 && commandOutput('taskset', ['-c', '0', 'true']) !== null
  const hard = commandOutput('/bin/sh', ['-c', 'ulimit -Hn'])
  const fileLimit = hard === null || hard === 'unlimited' ? Infinity : Number(hard)
  const clockTicks = Number(commandOutput('getconf', ['CLK_TCK'])) || 100
  const date = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
  return {
    pin,
    fileLimit,
    clockTicks,
    machine: `${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, Node ${process.version}, ${os.platform()} ${os.release()}, ${date}`
  }
}
