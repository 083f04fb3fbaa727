#!/usr/bin/env bash
# Makes the Dockerfile's base image, node:20-bookworm-slim, on a machine that cannot pull it:
# Debian bookworm (debootstrap --variant=minbase, from the mirror the host's apt uses) plus this
# machine's Node.js (with its headers) and npm, its CA bundle and npm network settings (registry, cafile, proxies),
# its apt mirror and proxy, and the image's `node` user (uid 1000), then `docker import`.
# Inside `docker build` (with --network host), `npm ci` and `apt-get` then reach the npm registry
# and Debian's mirror the way the host does.
#
#   scripts/make-base-image.sh [IMAGE]      (default node:20-bookworm-slim; needs root, debootstrap)
#
# The debootstrapped tree is cached in $ROLLGUARD_BASE_CACHE (default /var/cache/rollguard-test);
# the import is skipped when the image already holds the same inputs (its label says which). An
# image of that name this script did not make (a real pulled one) is left alone.
set -euo pipefail
image=${1:-node:20-bookworm-slim}
cache=${ROLLGUARD_BASE_CACHE:-/var/cache/rollguard-test}
suite=bookworm
label=org.rollguard.base-image

# --- the host's settings ---------------------------------------------------------------------
# The Debian mirror and security mirror the host's apt uses (deb822 URIs: or one-line deb entries).
apt_uris=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
  | sed -n -E 's#^URIs:[[:space:]]*##p; s#^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*#\2#p' | tr ' ' '\n')
mirror=${ROLLGUARD_DEBIAN_MIRROR:-$(grep -m1 -E '/debian/?$' <<<"$apt_uris" || echo http://deb.debian.org/debian)}
security=${ROLLGUARD_DEBIAN_SECURITY:-$(grep -m1 -E '/debian-security/?$' <<<"$apt_uris" || echo http://deb.debian.org/debian-security)}
apt_proxy=$(apt-config dump 2>/dev/null | grep -i -E '^Acquire::(http|https|ftp)::Proxy ' || true)

node_bin=$(readlink -f "$(command -v node)")
npm_root=$(npm root -g)
bundle=/etc/ssl/certs/ca-certificates.crt
# npm's network settings only: never tokens or other credentials (they would sit in an image layer).
npmrc=""
for key in registry cafile proxy https-proxy noproxy strict-ssl; do
  value=$(npm config get "$key" 2>/dev/null || true)
  case "$value" in ''|null|undefined) continue ;; esac
  [ "$key" = strict-ssl ] && [ "$value" = true ] && continue
  npmrc+="$key=$value"$'\n'
done
extra_ca=${NODE_EXTRA_CA_CERTS:-}
npm_cafile=$(npm config get cafile 2>/dev/null || true)
case "$npm_cafile" in null|undefined) npm_cafile="" ;; esac

key=$( {
  sha256sum "$0" "$node_bin" "$bundle" ${extra_ca:+"$extra_ca"} ${npm_cafile:+"$npm_cafile"}
  cat "$npm_root/npm/package.json"
  printf '%s\n' "$mirror" "$security" "$apt_proxy" "$npmrc" "$extra_ca"
} | sha256sum | cut -c1-16)

if docker image inspect "$image" >/dev/null 2>&1; then
  existing=$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$image")
  case "$existing" in
    "$key") echo "make-base-image: $image is up to date ($key)"; exit 0 ;;
    ''|'<no value>') echo "make-base-image: $image exists and was not made by this script; left alone"; exit 0 ;;
  esac
fi

# --- Debian bookworm, minbase, cached ----------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "make-base-image: needs root (debootstrap, chroot)" >&2; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap >/dev/null || { echo "make-base-image: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
mkdir -p "$cache"
rootfs="$cache/$suite-minbase"
if [ ! -e "$rootfs/.complete" ]; then
  echo "make-base-image: debootstrap $suite from $mirror into $rootfs (once)"
  rm -rf "$rootfs.tmp"
  debootstrap --variant=minbase --components=main "$suite" "$rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs.tmp/var/cache/apt/archives/"*.deb "$rootfs.tmp/var/lib/apt/lists/"*
  rm -rf "$rootfs" && mv "$rootfs.tmp" "$rootfs" && touch "$rootfs/.complete"
fi

# --- the image's tree: the cached Debian plus this machine's Node.js and settings ---------------
work="$cache/work"
rm -rf "$work" && cp -a "$rootfs" "$work" && rm -f "$work/.complete"
trap 'rm -rf "$work"' EXIT

install -D -m 0755 "$node_bin" "$work/usr/local/bin/node"
# Node's headers, where the real image has them: the build stage compiles better-sqlite3 against them.
node_include=$(readlink -f "$(dirname "$node_bin")/../include/node")
[ -f "$node_include/node.h" ] || { echo "make-base-image: no Node.js headers beside $node_bin ($node_include)" >&2; exit 1; }
mkdir -p "$work/usr/local/include" && cp -a "$node_include" "$work/usr/local/include/node"
mkdir -p "$work/usr/local/lib/node_modules"
for pkg in npm corepack; do
  [ -d "$npm_root/$pkg" ] && cp -a "$npm_root/$pkg" "$work/usr/local/lib/node_modules/"
done
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/usr/local/bin/npx"
[ -d "$work/usr/local/lib/node_modules/corepack" ] && ln -s ../lib/node_modules/corepack/dist/corepack.js "$work/usr/local/bin/corepack"

# CA: the host's bundle (any CA the host trusts, a TLS-inspecting proxy's included), and the files
# npm's cafile and NODE_EXTRA_CA_CERTS name, at the same paths.
for f in "$bundle" $extra_ca $npm_cafile; do
  [ -f "$f" ] && install -D -m 0644 "$f" "$work$f"
done
[ -n "$npmrc" ] && install -D -m 0644 /dev/stdin "$work/usr/local/etc/npmrc" <<<"$npmrc"

# apt: the host's mirrors (as the real image lists them: bookworm, -updates, -security) and proxy.
rm -f "$work/etc/apt/sources.list"
cat >"$work/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
[ -n "$apt_proxy" ] && printf '%s\n' "$apt_proxy" >"$work/etc/apt/apt.conf.d/01proxy"

# The real image's user: node, uid and gid 1000.
chroot "$work" /usr/sbin/groupadd --gid 1000 node
chroot "$work" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node

changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change "ENV NODE_VERSION=$(node -p 'process.versions.node')"
  --change 'CMD ["node"]'
  --change "LABEL $label=$key"
)
[ -n "$extra_ca" ] && changes+=(--change "ENV NODE_EXTRA_CA_CERTS=$extra_ca")
echo "make-base-image: importing $image (node $(node -v), npm $(npm -v), $mirror)"
tar --numeric-owner -C "$work" -c . | docker import "${changes[@]}" - "$image" >/dev/null
echo "make-base-image: $image ready ($key)"
