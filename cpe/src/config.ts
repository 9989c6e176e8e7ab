/**
 * Configuration schema of this daemon (TypeBox). The config helper (shared/src/config) loads it:
 * defaults < YAML file < environment < command line, validated, then deep-frozen.
 */
import { Type, type Static } from 'typebox'

export const LogSchema = Type.Object({
  /** pino level. Default `info`. */
  level: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace')], { default: 'info' })
}, { additionalProperties: false, default: {} })

export const ConfigSchema = Type.Object({
  log: LogSchema
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>
