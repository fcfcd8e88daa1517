import type { FastifyBaseLogger } from 'fastify'

/**
 * What an adapter is given by the app it serves (`attach`): delivery to this
 * process's subscribers and the topics it has subscribers for.
 */
export interface TopicAdapterHost {
  /**
   * Queues a message from another instance on this process's subscribers of
   * `topic`, its frame encoded once. `payload` is sent as it is: UTF-8 text
   * when `binary` is false (the adapter carried what a local publish gave it,
   * so it is not validated again). Returns on how many connections it was queued.
   */
  deliver (topic: string, payload: Buffer, binary: boolean): number
  /** The topics this process has at least one subscriber for, now. */
  topics (): IterableIterator<string>
  /** The app's logger (`app.log`), for the adapter's own warnings. */
  readonly log: FastifyBaseLogger
}

/**
 * Carries topics across processes (the `adapter` setting). The plugin calls
 * `subscribe` when the first connection of this process joins a topic and
 * `unsubscribe` when the last one leaves, and `publish` after delivering a
 * publish to this process's own subscribers, so the adapter forwards it to
 * the other instances, which hand it to their `TopicAdapterHost.deliver`.
 * Calls are synchronous and must not throw for transport trouble: an adapter
 * that cannot reach its broker drops and counts, local delivery goes on.
 */
export interface TopicAdapter {
  /** Once, when the plugin is registered. */
  attach (host: TopicAdapterHost): void
  /** Resolves when the adapter can carry messages (awaited in the app's `onReady`). */
  ready? (): Promise<void>
  subscribe (topic: string): void
  unsubscribe (topic: string): void
  /**
   * A publish already delivered to this process's subscribers, to forward.
   * `payload` is what was published (a string, or the bytes); `binary` says
   * which kind of message it is (a string may be published as binary).
   */
  publish (topic: string, payload: string | Buffer, binary: boolean): void
  /** At `app.close()`, after the 1001 round: release what the adapter opened. */
  close (): Promise<void>
}
