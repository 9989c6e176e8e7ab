/**
 * `kernel` section of the concentrator config: the TCP/MPTCP kernel profile the concentrator owns
 * while it runs (docs/failover.md, "Concentrator kernel profile"). The concentrator sends the
 * download: when a CPE's access dies, its subflow towards that access must go stale fast, and be
 * retried often enough that it resumes soon after the access returns. Every key unset (the default)
 * leaves the kernel alone; a set key is written at start and its previous value restored at stop.
 * Read at start only (a reload that changes it is refused: needs a restart).
 */
import { Type, type Static } from 'typebox'
import type { DeepReadonly } from '../../../shared/src/config/freeze.ts'
import { tcpProfileProperties } from '../../../shared/src/config/tcp-profile-schema.ts'

export const KernelSchema = Type.Object({
  ...tcpProfileProperties
},
{
  additionalProperties: false,
  default: {},
  description: 'kernel settings owned while the concentrator runs (set at start, restored at stop; docs/failover.md)'
})

/** The loaded (deep-frozen) `kernel:` section. */
export type KernelConfig = DeepReadonly<Static<typeof KernelSchema>>
