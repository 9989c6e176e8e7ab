/**
 * RFC 8803 Convert decoding: ConvertReader, decodeConvertMessage and the TLV decoders (convert.ts,
 * convert-tlv.ts, convert-reader.ts). Input: [options][split seed][bytes…]; options bit 0 the side
 * (converter or client), bit 1 configured private TLV types. The contract is the one of
 * test/helpers/fuzz-convert.ts: no throw; at most one message buffered; the chunked verdict equals the
 * one-shot decode; application data after a message comes back untouched; a decoded message
 * re-encodes to an equal message (decode(encode(x)) = x); every failure reply decodes as its Error.
 */
import { ConvertVerdicts, checkConvertInput } from '../../helpers/fuzz-convert.ts'
import { PRIVATE_TYPES } from '../../unit/shared/codec/convert-arbitraries.ts'
import { check, split } from '../engine/target.ts'
import type { FuzzTarget } from '../engine/target.ts'

const verdicts: ReadonlySet<string> = new Set(ConvertVerdicts)

export const target: FuzzTarget = {
  maxLen: 2048,
  fuzz (data) {
    if (data.length < 2) return
    const o = data[0] as number
    const options = { side: (o & 1) === 0 ? 'converter' : 'client', ...((o & 2) !== 0 ? { privateTypes: PRIVATE_TYPES } : {}) } as const
    const input = data.subarray(2)
    const verdict = checkConvertInput(input, split(input, data[1] as number), options)
    check(verdicts.has(verdict), verdict)
  }
}
