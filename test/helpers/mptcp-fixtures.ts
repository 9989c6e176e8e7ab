/** Loads the getsockopt buffers captured from a real kernel by test/fixtures/mptcp/capture-mptcp-fixtures.ts. */
import { readFileSync } from 'node:fs'

const dir = new URL('../fixtures/mptcp/', import.meta.url)

export function readFixture (name: string): Buffer {
  return Buffer.from(readFileSync(new URL(`${name}.hex`, dir), 'utf8').replace(/\s+/g, ''), 'hex')
}

export interface CapturedPair {
  subflows: number
  serverAddress: string
  serverPort: number
  clientLocalAddress: string
  clientLocalPort: number
  bytesWritten: number
  bytesRead: number
}

export interface CaptureMeta {
  kernel: string
  v4: CapturedPair
  v6: CapturedPair
  plainV4: { acceptedMptcpInfoErrno: number, acceptedSoProtocol: number, clientMptcpInfoErrno: number }
  plainV6: { acceptedMptcpInfoErrno: number, acceptedSoProtocol: number, clientMptcpInfoErrno: number }
}

export function readMeta (): CaptureMeta {
  return JSON.parse(readFileSync(new URL('meta.json', dir), 'utf8')) as CaptureMeta
}
