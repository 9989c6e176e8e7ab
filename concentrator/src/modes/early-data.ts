/**
 * Client bytes received after the request (SOCKS5) or the Convert message and before the upstream
 * is connected: the rest of the request's read plus everything that arrives while the destination
 * is vetted and dialled. They are read (not left in the kernel while the socket is paused), so
 * `limits.earlyDataMaxBytes` counts all of them however the client segmented them; over the cap
 * `onOver` is called once and reading stops. Memory is bounded by the cap plus one read.
 * A FIN read meanwhile is remembered (`ended`) so that the relay can pass it on.
 */
import type net from 'node:net'

export interface EarlyBytes {
  /** The bytes in the request's own read (a Convert SYN's payload after the message). */
  readonly first: Buffer
  /** The bytes read after it, until `take()`. */
  readonly later: Buffer
  /** The client's FIN was read before `take()`. */
  readonly ended: boolean
}

export class EarlyData {
  readonly #socket: net.Socket
  readonly #cap: number
  readonly #onOver: (bytes: number) => void
  readonly #first: Buffer
  readonly #later: Buffer[] = []
  #bytes: number
  #ended = false
  #reading = false

  /** Checks `first` against `cap` at once (`onOver` may be called from here), then reads on. */
  constructor (socket: net.Socket, first: Buffer, cap: number, onOver: (bytes: number) => void) {
    this.#socket = socket
    this.#cap = cap
    this.#onOver = onOver
    this.#first = first
    this.#bytes = first.length
    if (this.#bytes > cap) {
      onOver(this.#bytes)
      return
    }
    this.#reading = true
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    socket.resume()
  }

  /** Bytes received so far. */
  get bytes (): number { return this.#bytes }

  /** Stop reading (the socket is left paused) and hand the bytes over. */
  take (): EarlyBytes {
    this.#stop()
    const later = this.#later.length === 1 ? this.#later[0] as Buffer : Buffer.concat(this.#later)
    return { first: this.#first, later, ended: this.#ended }
  }

  #stop (): void {
    if (!this.#reading) return
    this.#reading = false
    this.#socket.pause()
    this.#socket.off('data', this.#onData)
    this.#socket.off('end', this.#onEnd)
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#bytes += chunk.length
    if (this.#bytes > this.#cap) {
      this.#stop()
      this.#later.length = 0
      this.#onOver(this.#bytes)
      return
    }
    this.#later.push(chunk)
  }

  readonly #onEnd = (): void => {
    this.#ended = true
  }
}
