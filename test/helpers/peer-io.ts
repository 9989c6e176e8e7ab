/** Small pieces the e2e peer scripts share: JSON-line output and `host:port` arguments. */

/** Print one JSON line on stdout (what test/helpers/json-lines.ts reads). */
export const out = (o: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(o) + '\n') }

/** `host:port` or `[v6]:port` → parts; throws on anything else. */
export function hostPort (text: string | undefined): { host: string, port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text ?? '')
  if (m === null) throw new Error(`want host:port, got ${String(text)}`)
  return { host: m[1] as string, port: Number(m[2]) }
}
