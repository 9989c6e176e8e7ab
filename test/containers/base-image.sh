#!/usr/bin/env bash
# Builds the local base image of the container test, because images cannot be pulled here:
# Debian bookworm (debootstrap --variant=minbase) + this machine's Node.js binary and npm, laid
# out like the official node image (/usr/local/bin/node, npm under /usr/local/lib/node_modules),
# imported with `podman import`. Debian's own nodejs (18.19 in bookworm) is older than the
# project's engines (>= 20.19), so the host's node is copied in.
#
# Also copies the host's CA bundle (/etc/ssl/certs/ca-certificates.crt, public certificates only)
# so `npm ci` inside the image build trusts the same registry path the host does (a TLS-inspecting
# egress proxy here), and sets NODE_EXTRA_CA_CERTS to it.
#
# Cache: /var/cache/hybrid-access/containers/bookworm-minbase.tar (the debootstrap result; delete
# it to rebuild). The image tag carries the node version: localhost/hybrid-access-base:bookworm-node<ver>.
# Usage: base-image.sh        prints the image name on the last line of stdout
set -euo pipefail
CACHE=${HYBRID_CONTAINERS_CACHE:-/var/cache/hybrid-access/containers}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_BIN=$(command -v node)
NODE_VERSION=$("$NODE_BIN" --version)
IMAGE="localhost/hybrid-access-base:bookworm-node${NODE_VERSION#v}"
if podman image exists "$IMAGE"; then echo "$IMAGE"; exit 0; fi

mkdir -p "$CACHE"
TARBALL="$CACHE/bookworm-minbase.tar"
if [ ! -s "$TARBALL" ]; then
  ROOT=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$ROOT"' EXIT
  echo "base-image: debootstrap --variant=minbase bookworm ($MIRROR)" >&2
  debootstrap --variant=minbase --include=libstdc++6,ca-certificates bookworm "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* \
    "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log
  tar -C "$ROOT" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$ROOT"; trap - EXIT
fi

podman image exists localhost/hybrid-access-debootstrap:bookworm \
  || podman import "$TARBALL" localhost/hybrid-access-debootstrap:bookworm >/dev/null

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")   # …/node_modules/npm
install -m 0755 "$(readlink -f "$NODE_BIN")" "$STAGE/node"
cp -a "$NPM_DIR" "$STAGE/npm"
cp /etc/ssl/certs/ca-certificates.crt "$STAGE/ca-certificates.crt"
cat >"$STAGE/Containerfile" <<'CF'
FROM localhost/hybrid-access-debootstrap:bookworm
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
CF
echo "base-image: podman build → $IMAGE" >&2
podman build --network none -q -t "$IMAGE" "$STAGE" >/dev/null
echo "$IMAGE"
