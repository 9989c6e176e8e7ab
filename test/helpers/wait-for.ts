/** Polls `check` every 200 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`)
}
