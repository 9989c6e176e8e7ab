// Types of scripts/system-deps.mjs for the TypeScript tests that import its pure parts.
export interface SystemPackage {
  readonly package: string
  readonly binaries: readonly string[]
  readonly for: readonly string[]
  readonly why: string
}
export interface Options { who: string[] | undefined, check: boolean, quiet: boolean, help: boolean }
export interface Missing { pkg: SystemPackage, binaries: string[] }
export interface Present { pkg: SystemPackage, found: Record<string, string> }
export const EXIT_OK: 0
export const EXIT_USAGE: 2
export const EXIT_MISSING: 3
export const EXIT_INSTALL_FAILED: 4
export const LIST_PATH: string
export const SBIN_DIRS: readonly string[]
export const SERVICES_STARTED_ON_INSTALL: Readonly<Record<string, readonly string[]>>
export const USAGE: string
export class UsageError extends Error {}
export function parseArgs (argv: readonly string[]): Options
export function selectPackages (packages: readonly SystemPackage[], who: readonly string[] | undefined): SystemPackage[]
export function searchDirs (pathVar: string | undefined): string[]
export function resolveBinary (name: string, dirs: readonly string[], isExecutable?: (file: string) => boolean): string | undefined
export function checkPackages (packages: readonly SystemPackage[], resolve: (binary: string) => string | undefined): { missing: Missing[], present: Present[] }
export function installCommandText (packageNames: readonly string[], opts?: { sudo?: boolean }): string
export function aptInstallArgs (packageNames: readonly string[]): string[]
export function whoText (who: readonly string[] | undefined): string
export function foreignBinaries (present: readonly Present[]): string[]
export function main (argv?: readonly string[], env?: NodeJS.ProcessEnv): number
