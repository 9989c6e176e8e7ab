/**
 * What one failed pipelined SOCKS5 attempt says about the concentrator (`socks5.pipelining: auto`,
 * docs/cpe.md "Pipelining `auto`"). Pure.
 *
 * The protection: a server that does not read ahead answers the greeting and then drops, misreads or
 * closes on the pipelined auth/CONNECT. But a destination that drops SYNs (no CONNECT reply by the
 * deadline) and a concentrator over a cap or draining (FIN or reset) look the same from here, so only
 * the credentials probe is conclusive; the rest is a suspicion that a stepwise retry must confirm by
 * getting a CONNECT reply where the pipelined attempt got none.
 */
import { upstreamFailureReason } from '../../../shared/src/net/connect-error.ts'

export type PipeliningEvidence = 'conclusive' | 'suspect' | 'none'

export interface PipelinedFailure {
  /** probe: `socks5.probeMs` passed (credentials); bad-reply: a reply of the wrong shape. */
  readonly event: 'probe' | 'deadline' | 'fin' | 'close' | 'bad-reply'
  /** The server answered the greeting and not one byte more (`Socks5ClientParser.greetingOnly`). */
  readonly greetingOnly: boolean
  /** Not one byte came back. */
  readonly silent: boolean
  /** The socket error seen before a close, if any. */
  readonly errno?: string | undefined
}

export interface PipeliningJudgement {
  readonly evidence: PipeliningEvidence
  readonly why: string
}

export function pipeliningEvidence (f: PipelinedFailure): PipeliningJudgement {
  switch (f.event) {
    case 'probe': return f.greetingOnly ? { evidence: 'conclusive', why: 'only the greeting answered by the probe' } : none
    case 'bad-reply': return { evidence: 'suspect', why: 'reply of the wrong shape' }
    case 'deadline': return f.greetingOnly ? { evidence: 'suspect', why: 'only the greeting answered by the deadline' } : none
    case 'fin':
      if (f.silent) return { evidence: 'suspect', why: 'FIN before any method reply' }
      return f.greetingOnly ? { evidence: 'suspect', why: 'FIN after the greeting' } : none
    case 'close':
      // Before any byte only the reset of an established connection (unread pipelined bytes) counts, not a refused connect.
      if (f.silent) return f.errno === undefined || upstreamFailureReason(f.errno) === 'reset' ? { evidence: 'suspect', why: 'reset before any method reply' } : none
      return f.greetingOnly ? { evidence: 'suspect', why: 'closed after the greeting' } : none
  }
}

const none: PipeliningJudgement = { evidence: 'none', why: '' }
