/**
 * A temporary directory for one test file, removed when the test process exits (also after a
 * failed assertion: `exit` runs either way), so test runs leave nothing in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made: string[] = []
let hooked = false

export function testTempDir (prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.push(dir)
  if (!hooked) {
    hooked = true
    process.once('exit', () => { for (const d of made) rmSync(d, { recursive: true, force: true }) })
  }
  return dir
}
