#!/usr/bin/env bash
# The fresh-machine proof of the one package list (shared/src/sys/system-packages.json) and its
# installer (scripts/system-deps.mjs): on a bare Debian (debootstrap --variant=minbase chroot) that
# has none of the packages,
#   (a) --check names the missing packages, prints the exact apt-get command and exits 3;
#   (d) a non-root user, and root without apt-get on PATH, get that command and exit 3, and
#       nothing is installed;
#   (b) root installs them (apt-get update + install --no-install-recommends) and exits 0;
#   (c) afterwards every binary of every listed package is on PATH and --check exits 0.
# Cached under /var/cache/hybrid-access/ (not under test): the bare minbase tree as a tarball
# keyed by release and architecture, and the downloaded .debs. The install itself runs in a fresh
# copy every time. FRESH_MACHINE_COLD=1 ignores both caches (and refreshes them).
# FRESH_MACHINE_README=1 adds, before (b), the README's quick start on that bare Debian:
#   (r) a copy of the repository (git archive HEAD) plus Node's own npm, then as root
#       `npm ci && npm run lab --silent -- --json`: npm's prelab installs the lab's packages
#       through the installer, the lab runs kernel MPTCP and the three modes through the daemons,
#       and the report card must have its four rows, each with subflows on dsl and lte.
#   FRESH_MACHINE_README=test also runs `npm test` there afterwards (its pretest installs the rest).
# Runs as root; called by .ci/run before npm test. Docs: docs/system-packages.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
RELEASE=${FRESH_MACHINE_RELEASE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${FRESH_MACHINE_CACHE:-/var/cache/hybrid-access}
ARCH=$(dpkg --print-architecture)
TARBALL=$CACHE/debian-$RELEASE-$ARCH-minbase.tar
DEBS=$CACHE/debs-$RELEASE-$ARCH
ROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin   # Debian's root PATH
USER_PATH=/usr/local/bin:/usr/bin:/bin                                   # Debian's user PATH
SCRIPT=/opt/hybrid-access/scripts/system-deps.mjs

say () { printf 'fresh-machine: %s\n' "$*"; }
die () { say "FAIL: $*" >&2; exit 1; }
now () { date +%s.%N; }
secs () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- outer part: a private mount namespace, so that no mount can outlive or leak from the run ---
if [ -z "${FRESH_MACHINE_WORK:-}" ]; then
  [ "$(id -u)" = 0 ] || die "must run as root (chroot, mount)"
  for tool in debootstrap unshare chroot tar node; do
    command -v "$tool" >/dev/null || die "$tool not found (node scripts/system-deps.mjs --for ci installs debootstrap)"
  done
  WORK=$(mktemp -d /var/tmp/hybrid-access-fresh.XXXXXX)
  outer_cleanup () {
    local rc=$?
    if grep -q " $WORK" /proc/self/mountinfo; then
      say "FAIL: still mounted under $WORK (not removing it):" >&2
      grep " $WORK" /proc/self/mountinfo >&2
      rc=1
    else
      rm -rf --one-file-system "$WORK"
    fi
    exit "$rc"
  }
  trap outer_cleanup EXIT
  rc=0
  FRESH_MACHINE_WORK=$WORK unshare --mount --propagation private -- bash "$0" "$@" || rc=$?
  exit "$rc"
fi

# ---- inner part (private mount namespace) -------------------------------------------------------
WORK=$FRESH_MACHINE_WORK
ROOT=$WORK/root
MOUNTS=()
T0=$(now)

cleanup () {
  local rc=$?
  # Processes left inside the chroot (none expected: policy-rc.d forbids starting services).
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ]; then
      say "killing leftover process ${p#/proc/} in the chroot: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" >&2
      kill -9 "${p#/proc/}" 2>/dev/null || true
    fi
  done
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" || true
  done
  if grep -q " $ROOT" /proc/self/mountinfo; then
    say "still mounted:" >&2; grep " $ROOT" /proc/self/mountinfo >&2
    rc=1
  fi
  if [ "$rc" = 0 ]; then
    say "PASS: the list and the installer work on a bare Debian $RELEASE ($(secs "$T0" "$(now)") s: ${TIMES:-})"
  else
    say "FAIL (exit $rc) after $(secs "$T0" "$(now)") s; the log above says which step" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
TIMES=""
phase () { TIMES="${TIMES:+$TIMES, }$1 $(secs "$2" "$(now)") s"; }

mkdir -p "$CACHE"
# 1. A bare Debian: the cached minbase tarball, or debootstrap (then cached for the next run).
t=$(now)
mkdir "$ROOT"
if [ -n "${FRESH_MACHINE_COLD:-}" ] || [ ! -s "$TARBALL" ]; then
  say "debootstrap --variant=minbase $RELEASE from $MIRROR (cold run; caching it in $TARBALL)"
  debootstrap --variant=minbase --arch="$ARCH" "$RELEASE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  grep -q " $ROOT" /proc/self/mountinfo && die "debootstrap left mounts under $ROOT"
  (flock 9; tar --numeric-owner -C "$ROOT" -cf "$TARBALL.tmp.$$" . && mv "$TARBALL.tmp.$$" "$TARBALL") 9>"$CACHE/.lock"
  phase "debootstrap+cache" "$t"
else
  tar --numeric-owner -C "$ROOT" -xf "$TARBALL"
  phase "unpack cached minbase" "$t"
fi

# 2. What a developer brings to a fresh machine: Node (a binary, not a Debian package) and the repo's
#    installer with its list. Nothing else from this host.
t=$(now)
NODE=$(command -v node)
install -D -m 0755 "$(readlink -f "$NODE")" "$ROOT/usr/local/bin/node"
install -D -m 0644 "$REPO/scripts/system-deps.mjs" "$ROOT$SCRIPT"
install -D -m 0644 "$REPO/shared/src/sys/system-packages.json" "$ROOT/opt/hybrid-access/shared/src/sys/system-packages.json"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $RELEASE main
deb $MIRROR $RELEASE-updates main
deb $SECURITY_MIRROR $RELEASE-security main
EOF
# A chroot has no init: packages must not start their daemons (danted, prometheus) in it, where
# they would hold ports of this host. The installer's own service stop is exercised on real hosts.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
mnt () { mount "$@"; MOUNTS+=("${*: -1}"); }
# The chroot's / as a mount point of its own, as on a real machine (`ip netns exec` makes / rslave).
mnt --bind "$ROOT" "$ROOT"
mnt -t proc proc "$ROOT/proc"
mnt --bind /dev "$ROOT/dev"
if [ -z "${FRESH_MACHINE_COLD:-}" ]; then
  mkdir -p "$DEBS"
  mnt --bind "$DEBS" "$ROOT/var/cache/apt/archives"
else
  rm -rf "$DEBS"; mkdir -p "$DEBS"   # cold: download everything, then cache it for next time
  mnt --bind "$DEBS" "$ROOT/var/cache/apt/archives"
fi
in_root () { chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH="$ROOT_PATH" "$@"; }
as_user () { chroot --userspec=nobody:nogroup "$ROOT" /usr/bin/env -i HOME=/tmp LANG=C.UTF-8 PATH="$USER_PATH" "$@"; }
missing_libs=$(in_root ldd /usr/local/bin/node | grep 'not found' || true)
[ -z "$missing_libs" ] || die "node needs libraries the bare Debian lacks: $missing_libs"
say "bare Debian $RELEASE with node $(in_root node --version) (shared libraries: all in minbase)"
phase "prepare" "$t"

# The expected answer, computed independently of the installer: packages with a binary that
# sh's `command -v` cannot find under Debian's root PATH.
ALL=$(node -e 'for (const p of JSON.parse(require("fs").readFileSync(process.argv[1])).packages) console.log(p.package + " " + p.binaries.join(" "))' \
  "$REPO/shared/src/sys/system-packages.json")
EXPECTED=""
while read -r pkg bins; do
  for b in $bins; do
    if ! in_root sh -c "command -v $b" >/dev/null; then EXPECTED="${EXPECTED:+$EXPECTED }$pkg"; break; fi
  done
done <<<"$ALL"
[ -n "$EXPECTED" ] || die "the bare Debian already has every listed package: nothing to prove"
say "missing on the bare Debian: $EXPECTED"
CMD="apt-get update && apt-get install -y --no-install-recommends $EXPECTED"
SUDO_CMD="sudo apt-get update && sudo apt-get install -y --no-install-recommends $EXPECTED"
dpkg_before=$(md5sum <"$ROOT/var/lib/dpkg/status")

expect () { # expect RC NEEDLE LABEL -- command...
  local want=$1 needle=$2 label=$3 out rc=0; shift 4
  out=$("$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed 's/^/    | /'
  [ "$rc" = "$want" ] || die "$label: exit $rc, expected $want"
  [ -z "$needle" ] || grep -qxF "  $needle" <<<"$out" || die "$label: the output lacks the line '  $needle'"
  say "ok: $label (exit $rc)"
}

# (a) --check as root: names what is missing, exact command, exit 3.
t=$(now)
expect 3 "$CMD" "(a) --check --all as root" -- in_root node "$SCRIPT" --check --all
# (d) not root: the command with sudo, exit 3; root without apt-get: the command, exit 3.
expect 3 "$SUDO_CMD" "(d) as user nobody" -- as_user node "$SCRIPT" --all
mv "$ROOT/usr/bin/apt-get" "$ROOT/usr/bin/apt-get.hidden"
expect 3 "$CMD" "(d) as root on a machine without apt-get" -- in_root node "$SCRIPT" --all
mv "$ROOT/usr/bin/apt-get.hidden" "$ROOT/usr/bin/apt-get"
[ "$(md5sum <"$ROOT/var/lib/dpkg/status")" = "$dpkg_before" ] || die "(a)/(d) changed the installed packages"
phase "checks" "$t"

# (r) the README's quick start, on the bare Debian (optional: a few minutes).
if [ -n "${FRESH_MACHINE_README:-}" ]; then
  t=$(now)
  APP=/opt/hybrid-access/repo
  mkdir -p "$ROOT$APP"
  git -C "$REPO" archive HEAD | tar -x -C "$ROOT$APP"
  NPM_DIR=$(dirname "$(readlink -f "$NODE")")/../lib/node_modules/npm
  [ -d "$NPM_DIR" ] || die "(r) npm not found next to $NODE"
  mkdir -p "$ROOT/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  mnt -t sysfs sysfs "$ROOT/sys"
  mnt -t tmpfs tmpfs "$ROOT/run"
  mnt -t tmpfs tmpfs "$ROOT/tmp"
  # This host's network may inspect TLS with its own CA (it sets NODE_EXTRA_CA_CERTS): hand that
  # setting, and only it, to npm in the chroot, as a user behind such a proxy would configure it.
  CA_ENV=""
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$ROOT/etc/hybrid-access/host-ca.crt"
    CA_ENV="NODE_EXTRA_CA_CERTS=/etc/hybrid-access/host-ca.crt"
  fi
  readme () { in_root sh -c "cd $APP && $CA_ENV $1"; }
  readme "npm ci --no-audit --no-fund" >"$WORK/npm-ci.log" 2>&1 || { tail -30 "$WORK/npm-ci.log" >&2; die "(r) npm ci failed"; }
  readme "npm run lab --silent -- --json --prefix hat-fm-" >"$WORK/lab.json" 2>"$WORK/lab.log" \
    || { tail -40 "$WORK/lab.log" >&2; die "(r) npm run lab failed"; }
  grep -q 'system-deps: installing' "$WORK/lab.log" || { head -20 "$WORK/lab.log" >&2; die "(r) npm run lab did not install its packages (prelab)"; }
  node -e '
    const card = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
    const rows = card.rows.map((r) => `${r.mode}:${r.download.subflowAccesses.join("+")}/${r.upload.subflowAccesses.join("+")}`)
    if (rows.join(" ") !== "mptcp:dsl+lte/dsl+lte socks5:dsl+lte/dsl+lte convert:dsl+lte/dsl+lte transparent:dsl+lte/dsl+lte") { console.error("report card rows: " + rows.join(" ")); process.exit(1) }
    console.log(card.rows.map((r) => `${r.label} ${r.download.goodputMbps}/${r.upload.goodputMbps} Mbit/s`).join(", "))
  ' "$WORK/lab.json" >"$WORK/card.txt" || die "(r) the report card lacks a mode or a subflow per access: $(cat "$WORK/card.txt")"
  say "ok: (r) npm ci && npm run lab on the bare Debian: $(cat "$WORK/card.txt")"
  if [ "$FRESH_MACHINE_README" = test ]; then
    readme "npm test" >"$WORK/npm-test.log" 2>&1 || { grep -E '^not ok|^# (pass|fail)' "$WORK/npm-test.log" >&2; tail -40 "$WORK/npm-test.log" >&2; die "(r) npm test failed"; }
    say "ok: (r) npm test on the bare Debian: $(grep -E '^# (pass|fail)' "$WORK/npm-test.log" | tr '\n' ' ')"
  fi
  phase "readme" "$t"
fi

# (b) root installs them.
t=$(now)
expect 0 "" "(b) install --all as root" -- in_root node "$SCRIPT" --all
phase "install" "$t"

# (c) every binary of every listed package is on PATH now, and --check agrees.
t=$(now)
while read -r pkg bins; do
  for b in $bins; do
    at=$(in_root sh -c "command -v $b") || die "(c) $b ($pkg) not on PATH after the install"
    case "$at" in /usr/local/*) die "(c) $b resolved to $at, not from the package";; esac
  done
done <<<"$ALL"
say "ok: (c) every binary of every listed package is on PATH: $(awk '{ $1 = ""; printf "%s", $0 }' <<<"$ALL" | xargs)"
expect 0 "" "(c) --check --all after the install" -- in_root node "$SCRIPT" --check --all
phase "verify" "$t"
