#!/usr/bin/env bash
# Container test (docs/containers.md): builds a local base image, both daemon images from
# deploy/docker/Dockerfile and the lab helper images, starts the compose lab (docker-compose.yml)
# with podman-compose for each mode in HYBRID_CT_MODES (default: socks5 convert transparent) and
# checks, per mode:
#   - /readyz of both daemons, the images' HEALTHCHECK (podman healthcheck run)
#   - a download client → CPE → concentrator → server: bytes and SHA-256
#   - MPTCP with both accesses: the CPE's hybrid_path_bytes_total{direction="down"} per path and the
#     access routers' interface counters (both accesses carry part of the file)
#   - the concentrator's user and capabilities (uid 10001, none in socks5/convert)
#   - Prometheus: up == 1 for both scrape jobs (HTTP API)
#   - SIGTERM drain: podman stop with a download running; "draining" logged, exit code 0, in time
# Everything runs on internal podman networks in documentation ranges; containers, networks and the
# project are removed at exit (also on failure); the images stay cached.
#
# Machine set-up it does itself (idempotent, as root): installs the packages `for: containers` of
# shared/src/sys/system-packages.json through scripts/system-deps.mjs when missing, and writes
# /etc/containers/containers.conf (runtime runc, no default ulimits: podman 4.3's crun default and
# its default ulimits do not work here) when it does not already say so (the old file is kept as
# containers.conf.hybrid-access.orig).
#
# Output: "# containers <what>: {json}" lines; exit 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PROJECT=hat-ct
MODES=${HYBRID_CT_MODES:-socks5 convert transparent}
TAG=${HYBRID_CT_TAG:-test}
T0=$(date +%s)

say () { printf '# containers %s\n' "$*"; }
fail () { printf 'not ok: %s\n' "$*" >&2; exit 1; }
elapsed () { echo $(( $(date +%s) - T0 )); }

[ "$(id -u)" = 0 ] || { echo "skip: needs root (podman networks, NET_ADMIN containers)"; exit 0; }
[ -e /proc/sys/net/mptcp/enabled ] || { echo "skip: no kernel MPTCP"; exit 0; }

# ---- machine set-up -------------------------------------------------------------------------
# The packages (podman, podman-compose, runc, netavark, aardvark-dns, iptables, debootstrap) come
# from the project's one list and installer, like everything else (npm's pretest:containers runs it
# too; this covers `bash test/containers/run.sh` by hand).
node scripts/system-deps.mjs --for containers || fail "system packages for the container test are missing (see above)"
CONF=/etc/containers/containers.conf
if ! { grep -qs '^runtime *= *"runc"' "$CONF" && grep -qs '^default_ulimits *= *\[\]' "$CONF"; }; then
  mkdir -p /etc/containers
  [ -e "$CONF" ] && [ ! -e "$CONF.hybrid-access.orig" ] && cp "$CONF" "$CONF.hybrid-access.orig"
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$CONF"
  say "setup: {\"wrote\":\"$CONF\"}"
fi

# ---- teardown (also on failure) -------------------------------------------------------------
NETS=$(node -e "
  const { parse } = require('yaml'); const c = parse(require('fs').readFileSync('docker-compose.yml', 'utf8'))
  for (const [n, d] of Object.entries(c.networks)) {
    if (d.internal !== true) throw new Error('network ' + n + ' is not internal')
    const i = d.ipam.config[0]
    console.log([n, i.subnet, i.gateway, i.ip_range].join(' '))
  }")
# Each network becomes a bridge with an address in the host's namespace: a subnet that holds an
# address the host reaches (its own networks, its routes' gateways, the package mirrors and
# registry it resolves) would cut the host off from it while the test runs. Refuse those.
HOST_ADDRS=$( { ip -4 -o addr show | awk '{print $4}'; ip -4 route show | grep -v ' dev podman' | awk '$2 == "via" {print $3} $1 != "default" {print $1}';
  getent ahostsv4 registry.npmjs.org deb.debian.org 2>/dev/null | awk '{print $1}'; } | sort -u | tr '\n' ' ')
OVERLAP=$(node -e "
  const ipaddr = require('ipaddr.js')
  const [nets, host] = [process.argv[1].trim().split('\n').map((l) => l.split(' ')), process.argv[2].trim().split(' ')]
  for (const [n, subnet] of nets) {
    const [a, len] = ipaddr.parseCIDR(subnet)
    for (const h of host) {
      const [b, hlen] = h.includes('/') ? ipaddr.parseCIDR(h) : [ipaddr.parse(h), 32]
      if (a.kind() === b.kind() && (b.match(a, len) || a.match(b, hlen))) console.log(n + ' ' + subnet + ' overlaps ' + h)
    }
  }" "$NETS" "$HOST_ADDRS")
[ -z "$OVERLAP" ] || fail "compose networks overlap what this host uses (change docker-compose.yml): $OVERLAP"
compose () { podman-compose -p "$PROJECT" "$@"; }
BRIDGES=()
# Remove the lab's networks, then any host bridge of theirs that netavark left behind (it does when
# a container's teardown fails); only bridges of networks this script created.
remove_networks () {
  local n b
  while read -r n _; do podman network rm -f "${PROJECT}_$n" >/dev/null 2>&1; done <<<"$NETS"
  for b in "${BRIDGES[@]}"; do
    if ip link show "$b" >/dev/null 2>&1; then say "leftover-bridge: {\"dev\":\"$b\"}"; ip link del "$b"; fi
  done
  BRIDGES=()
}
teardown () {
  local rc=$?
  set +e
  if [ $rc -ne 0 ]; then
    for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
      echo "--- logs $c (tail)" >&2; podman logs --tail 30 "$c" >&2 2>&1
    done
  fi
  compose down -t 2 >/dev/null 2>&1
  for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do podman rm -f "$c" >/dev/null 2>&1; done
  remove_networks
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---- images ---------------------------------------------------------------------------------
t=$(date +%s)
BASE=$(test/containers/base-image.sh | tail -1)
say "base-image: {\"image\":\"$BASE\",\"seconds\":$(( $(date +%s) - t ))}"
build () { # <tag> <file> [target]
  local args=(--format docker -q -f "$2" --build-arg "BASE_IMAGE=$BASE" -t "$1")
  [ -n "${3:-}" ] && args+=(--target "$3")
  podman build "${args[@]}" . >/dev/null
}
t=$(date +%s)
export HYBRID_CPE_IMAGE=localhost/hybrid-access/cpe:$TAG
export HYBRID_CONCENTRATOR_IMAGE=localhost/hybrid-access/concentrator:$TAG
export HYBRID_LAB_IMAGE=localhost/hybrid-access/lab:$TAG
export PROMETHEUS_IMAGE=localhost/hybrid-access/prometheus:$TAG
build "$HYBRID_CONCENTRATOR_IMAGE" deploy/docker/Dockerfile concentrator
build "$HYBRID_CPE_IMAGE" deploy/docker/Dockerfile cpe
build "$HYBRID_LAB_IMAGE" deploy/docker/lab.Dockerfile
build "$PROMETHEUS_IMAGE" deploy/docker/prometheus.Dockerfile
sizes=$(for i in "$HYBRID_CPE_IMAGE" "$HYBRID_CONCENTRATOR_IMAGE" "$HYBRID_LAB_IMAGE" "$PROMETHEUS_IMAGE"; do
  printf '"%s":%s,' "${i#localhost/hybrid-access/}" "$(podman image inspect --format '{{.Size}}' "$i")"; done)
say "images: {\"seconds\":$(( $(date +%s) - t )),\"bytes\":{${sizes%,}}}"

# ---- helpers --------------------------------------------------------------------------------
ctr () { echo "${PROJECT}_$1_1"; }
x () { local c; c=$(ctr "$1"); shift; podman exec "$c" "$@"; }
# GET from inside a container: prints "<status> <body>"
get () { x "$1" curl -sS --max-time 5 -o /tmp/body -w '%{http_code}' "$2" 2>/dev/null && x "$1" cat /tmp/body; }
wait_ready () { # <ctr to ask from> <url> <what>
  local i
  for i in $(seq 1 60); do
    [ "$(x "$1" curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$2" 2>/dev/null)" = 200 ] && return 0
    sleep 1
  done
  fail "$3 not ready after 60 s ($2)"
}
metric () { # <metrics text file> <name> <label filter regex>: sum of matching samples
  awk -v n="$2" -v f="$3" '$1 ~ "^"n"[{]" && $1 ~ f { s += $2 } END { printf "%.0f", s + 0 }' "$1"
}
router_tx () { # <router> <cpe-side subnet>: bytes sent towards the CPE
  local dev; dev=$(x "$1" ip -o -4 addr show to "$2" | awk '{ print $2 }')
  x "$1" cat "/sys/class/net/$dev/statistics/tx_bytes"
}

run_mode () {
  local mode=$1 files=(-f docker-compose.yml) tm
  tm=$(date +%s)
  [ "$mode" = transparent ] && files+=(-f deploy/compose/transparent.yml)
  while read -r n subnet gw range; do
    podman network exists "${PROJECT}_$n" && podman network rm -f "${PROJECT}_$n" >/dev/null
    podman network create --internal --subnet "$subnet" --gateway "$gw" --ip-range "$range" \
      --label "io.podman.compose.project=$PROJECT" "${PROJECT}_$n" >/dev/null
    BRIDGES+=("$(podman network inspect --format '{{.NetworkInterface}}' "${PROJECT}_$n")")
  done <<<"$NETS"
  HYBRID_MODE=$mode compose "${files[@]}" up -d >/tmp/hat-ct-up.log 2>&1 || { cat /tmp/hat-ct-up.log >&2; fail "$mode: compose up"; }
  wait_ready client http://203.0.113.129:9091/readyz "$mode: cpe /readyz"
  wait_ready server http://203.0.113.1:9090/readyz "$mode: concentrator /readyz"
  local tready=$(( $(date +%s) - tm ))
  for d in cpe hag; do podman healthcheck run "$(ctr $d)" >/dev/null || fail "$mode: $d HEALTHCHECK"; done

  # who runs the concentrator, with which capabilities
  local st; st=$(x hag cat /proc/1/status)
  local uid capeff capcpe
  uid=$(awk '/^Uid:/ { print $2 }' <<<"$st"); capeff=$(awk '/^CapEff:/ { print $2 }' <<<"$st")
  capcpe=$(x cpe awk '/^CapEff:/ { print $2 }' /proc/1/status)
  if [ "$mode" = transparent ]; then [ "$uid" = 0 ] || fail "$mode: concentrator uid $uid"
  else [ "$uid" = 10001 ] && [ "$capeff" = 0000000000000000 ] || fail "$mode: concentrator uid $uid caps $capeff"; fi
  [ "$capcpe" = 0000000000003000 ] || fail "$mode: cpe caps $capcpe (want NET_ADMIN|NET_RAW = 0x3000)"

  # the download
  x client curl -sS --max-time 5 http://203.0.113.129:9091/metrics >/tmp/hat-ct-m0
  x server curl -sS --max-time 5 http://203.0.113.1:9090/metrics >/tmp/hat-ct-c0
  local d0 l0; d0=$(router_tx dsl 198.51.100.0/28); l0=$(router_tx lte 198.51.100.64/28)
  local want got bytes t1 t2
  want=$(x client curl -sS --max-time 10 http://203.0.113.10/file.sha256 | cut -d' ' -f1)
  t1=$(date +%s%N)
  read -r bytes got < <(x client sh -c 'curl -sS --max-time 120 http://203.0.113.10/file.bin | tee /tmp/f | wc -c | tr "\n" " "; sha256sum </tmp/f | cut -d" " -f1; rm -f /tmp/f')
  t2=$(date +%s%N)
  [ -n "$want" ] && [ "$got" = "$want" ] || fail "$mode: sha256 $got != $want ($bytes bytes)"
  sleep 2   # the agent samples its subflows every second and at close
  x client curl -sS --max-time 5 http://203.0.113.129:9091/metrics >/tmp/hat-ct-m1
  x server curl -sS --max-time 5 http://203.0.113.1:9090/metrics >/tmp/hat-ct-c1
  # the concentrator accepted the download in this mode (convert did not fall back to SOCKS5)
  local acc; acc=$(( $(metric /tmp/hat-ct-c1 hybrid_connections_accepted_total "mode=\"$mode\"") - $(metric /tmp/hat-ct-c0 hybrid_connections_accepted_total "mode=\"$mode\"") ))
  [ "$acc" -ge 1 ] || fail "$mode: the concentrator accepted no $mode connection"
  local pd pl rd rl
  pd=$(( $(metric /tmp/hat-ct-m1 hybrid_path_bytes_total 'path="dsl".*direction="down"|direction="down".*path="dsl"') - $(metric /tmp/hat-ct-m0 hybrid_path_bytes_total 'path="dsl".*direction="down"|direction="down".*path="dsl"') ))
  pl=$(( $(metric /tmp/hat-ct-m1 hybrid_path_bytes_total 'path="lte".*direction="down"|direction="down".*path="lte"') - $(metric /tmp/hat-ct-m0 hybrid_path_bytes_total 'path="lte".*direction="down"|direction="down".*path="lte"') ))
  rd=$(( $(router_tx dsl 198.51.100.0/28) - d0 )); rl=$(( $(router_tx lte 198.51.100.64/28) - l0 ))
  local mbit; mbit=$(awk -v b="$bytes" -v ns=$(( t2 - t1 )) 'BEGIN { printf "%.1f", b * 8 / (ns / 1e9) / 1e6 }')
  say "download-$mode: {\"bytes\":$bytes,\"concentrator_accepted_$mode\":$acc,\"sha256\":\"$got\",\"mbit_s\":$mbit,\"agent_path_down\":{\"dsl\":$pd,\"lte\":$pl},\"router_tx_to_cpe\":{\"dsl\":$rd,\"lte\":$rl}}"
  [ $(( pd * 10 )) -gt "$bytes" ] && [ $(( pl * 10 )) -gt "$bytes" ] || fail "$mode: a path carried under 10 % (agent: dsl $pd lte $pl of $bytes)"
  [ $(( rd * 10 )) -gt "$bytes" ] && [ $(( rl * 10 )) -gt "$bytes" ] || fail "$mode: an access carried under 10 % (routers: dsl $rd lte $rl of $bytes)"

  # Prometheus: up == 1 for both jobs
  local pip q i ok=0
  pip=$(podman inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{if eq $k "'"${PROJECT}_lan"'"}}{{$v.IPAddress}}{{end}}{{end}}' "$(ctr prometheus)")
  for i in $(seq 1 30); do
    q=$(x client curl -s --max-time 3 "http://$pip:9090/api/v1/query?query=up" 2>/dev/null || true)
    if grep -q '"job":"hybrid-cpe"[^]]*"1"\]' <<<"$q" && grep -q '"job":"hybrid-concentrator"[^]]*"1"\]' <<<"$q"; then ok=1; break; fi
    sleep 1
  done
  [ $ok = 1 ] || fail "$mode: Prometheus ($pip) up != 1 for both jobs: $q"
  say "prometheus-$mode: {\"up\":{\"hybrid-cpe\":1,\"hybrid-concentrator\":1}}"

  # SIGTERM drain with a slow download running through both daemons
  x client sh -c 'curl -s --max-time 30 --limit-rate 200k -o /dev/null http://203.0.113.10/file.bin &' || true
  sleep 2
  local s0 s1 ec ecc
  s0=$(date +%s%N)
  podman stop -t 20 "$(ctr cpe)" >/dev/null
  s1=$(date +%s%N)
  podman stop -t 20 "$(ctr hag)" >/dev/null
  ec=$(podman inspect --format '{{.State.ExitCode}}' "$(ctr cpe)")
  ecc=$(podman inspect --format '{{.State.ExitCode}}' "$(ctr hag)")
  podman logs "$(ctr cpe)" >/tmp/hat-ct-cpe.log 2>&1; podman logs "$(ctr hag)" >/tmp/hat-ct-hag.log 2>&1
  local active; active=$(grep '"msg":"draining"' /tmp/hat-ct-cpe.log | sed -n 's/.*"active":\([0-9]*\).*/\1/p' | tail -1)
  [ "$ec" = 0 ] && [ "$ecc" = 0 ] || fail "$mode: exit codes cpe $ec concentrator $ecc"
  grep -q '"msg":"cpe agent stopped"' /tmp/hat-ct-cpe.log || fail "$mode: cpe did not log its stop"
  grep -q '"msg":"draining"' /tmp/hat-ct-hag.log && grep -q '"msg":"concentrator stopped"' /tmp/hat-ct-hag.log || fail "$mode: concentrator did not log its drain"
  [ "${active:-0}" -ge 1 ] || fail "$mode: cpe drained no connection (active ${active:-?})"
  say "drain-$mode: {\"cpe_stop_ms\":$(( (s1 - s0) / 1000000 )),\"cpe_active_at_sigterm\":$active,\"exit\":{\"cpe\":$ec,\"concentrator\":$ecc}}"
  compose "${files[@]}" down -t 2 >/dev/null 2>&1
  remove_networks
  say "mode-$mode: {\"ok\":true,\"ready_seconds\":$tready,\"seconds\":$(( $(date +%s) - tm ))}"
}

for mode in $MODES; do run_mode "$mode"; done
say "total: {\"modes\":\"$MODES\",\"seconds\":$(elapsed)}"
echo ok
