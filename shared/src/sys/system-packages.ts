/**
 * The one list of Debian packages (`system-packages.json`, also read by the installer
 * scripts/system-deps.mjs), looked up by binary: which package provides `nft`, and the install hint
 * the daemons print when it is missing.
 */
import list from './system-packages.json' with { type: 'json' }

export interface SystemPackage {
  readonly package: string
  readonly binaries: readonly string[]
  readonly for: readonly string[]
  readonly why: string
}

export const SYSTEM_PACKAGES: readonly SystemPackage[] = list.packages

/** The Debian package providing `binary` (`nft` → `nftables`), or undefined when the list lacks it. */
export function debianPackageOf (binary: string, packages: readonly SystemPackage[] = SYSTEM_PACKAGES): string | undefined {
  return packages.find((p) => p.binaries.includes(binary))?.package
}

/** `(Debian package nftables): install with apt-get install nftables`, or a generic hint. */
export function installHint (binary: string, packages: readonly SystemPackage[] = SYSTEM_PACKAGES): string {
  const pkg = debianPackageOf(binary, packages)
  return pkg === undefined ? '(no Debian package known for it): install it or fix PATH' : `(Debian package ${pkg}): install with apt-get install ${pkg}`
}
