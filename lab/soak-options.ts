/**
 * The soak's command-line options (`npm run lab -- --scenario soak …`, `npm run soak -- …`),
 * parsed and bounded. Pure.
 */
import { DAEMON_MODES, type DaemonMode } from './lab-daemons-config.ts'

export interface SoakSelection {
  readonly modes: readonly DaemonMode[]
  readonly minutes: number
  readonly rate: number
  /** Base path of the results files (`<base>.txt`, `<base>.json`); default under lab-output/. */
  readonly results?: string
}

export interface SoakArgs {
  readonly modes?: string | undefined
  readonly minutes?: string | undefined
  readonly hours?: string | undefined
  readonly rate?: string | undefined
  readonly results?: string | undefined
}

/** Soak runs at most a day; the rate stays within what one lab carries (docs/soak.md). */
export const SOAK_LIMITS = { maxMinutes: 24 * 60, minMinutes: 2, minRate: 1, maxRate: 50, defaultMinutes: 10, defaultRate: 25 } as const

/** `--modes` (daemon modes, default socks5), `--minutes` or `--hours`, `--rate`, `--results`. */
export function parseSoakSelection (a: SoakArgs): SoakSelection | { error: string } {
  const modes = soakModes(a.modes)
  if (!Array.isArray(modes)) return modes
  const minutes = soakMinutes(a)
  if (typeof minutes !== 'number') return minutes
  const rate = Number(a.rate ?? SOAK_LIMITS.defaultRate)
  if (!Number.isFinite(rate) || rate < SOAK_LIMITS.minRate || rate > SOAK_LIMITS.maxRate) return { error: `--rate must be ${SOAK_LIMITS.minRate}..${SOAK_LIMITS.maxRate} connections/s, got ${String(a.rate)}` }
  return { modes, minutes, rate, ...(a.results !== undefined ? { results: a.results } : {}) }
}

function soakModes (list: string | undefined): DaemonMode[] | { error: string } {
  const modes = (list ?? 'socks5').split(',').map((m) => m.trim()).filter((m) => m !== '')
  const unknown = modes.find((m) => !(DAEMON_MODES as readonly string[]).includes(m))
  if (unknown !== undefined || modes.length === 0) return { error: `--modes for the soak: ${DAEMON_MODES.join(', ')} (got ${JSON.stringify(list)})` }
  return modes as DaemonMode[]
}

function soakMinutes (a: SoakArgs): number | { error: string } {
  if (a.minutes !== undefined && a.hours !== undefined) return { error: '--minutes and --hours exclude each other' }
  const minutes = a.hours !== undefined ? Number(a.hours) * 60 : Number(a.minutes ?? SOAK_LIMITS.defaultMinutes)
  if (Number.isFinite(minutes) && minutes >= SOAK_LIMITS.minMinutes && minutes <= SOAK_LIMITS.maxMinutes) return minutes
  const given = a.hours !== undefined ? `--hours ${a.hours}` : `--minutes ${String(a.minutes)}`
  return { error: `soak duration must be ${SOAK_LIMITS.minMinutes} minutes to ${SOAK_LIMITS.maxMinutes / 60} hours, got ${given}` }
}
