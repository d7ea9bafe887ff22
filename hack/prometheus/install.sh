#!/usr/bin/env bash
# Installs Debian's Prometheus 2.42.0 (the package's /usr/bin/prometheus and /usr/bin/promtool only: no service
# scripts, no system changes) into ${CROUPIER_CACHE:-~/.cache/croupier}/prometheus/2.42.0/bin and prints that folder.
# The .deb comes from `apt-get download` (no root needed) or, when apt's lists do not offer it, straight from the
# Debian mirror; on amd64 its SHA-256 is pinned. With both binaries present it returns at once; concurrent runs wait
# for each other (flock) instead of unpacking twice.
# Env: CROUPIER_CACHE (cache root), CROUPIER_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
VERSION=2.42.0
DEB_VERSION=2.42.0+ds-5+deb12u1
AMD64_SHA256=81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55
root="${CROUPIER_CACHE:-$HOME/.cache/croupier}/prometheus/${VERSION}"
out="$root/bin"
complete() { [ -x "$out/prometheus" ] && [ -x "$out/promtool" ]; }
if complete; then echo "$out"; exit 0; fi

mkdir -p "$root"
if command -v flock >/dev/null; then
  exec 9>"$root/install.lock"
  flock 9
  if complete; then echo "$out"; exit 0; fi  # another run finished while we waited
fi

work=$(mktemp -d "$root/tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
arch=$(dpkg --print-architecture)
deb="$work/prometheus_${DEB_VERSION}_${arch}.deb"
echo "install.sh: fetching prometheus ${DEB_VERSION} (${arch})" >&2
if ! (cd "$work" && apt-get download -q "prometheus=${DEB_VERSION}" >&2 2>"$work/apt.log"); then
  mirror=${CROUPIER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  echo "install.sh: apt-get download failed ($(tail -1 "$work/apt.log")); trying ${mirror}" >&2
  curl -fsSL --retry 3 -o "$deb" "${mirror}/pool/main/p/prometheus/prometheus_${DEB_VERSION}_${arch}.deb"
fi
if [ "$arch" = amd64 ]; then
  echo "${AMD64_SHA256}  ${deb}" | sha256sum -c --quiet - >&2 || { echo "install.sh: ${deb##*/}: SHA-256 mismatch" >&2; exit 1; }
fi
dpkg-deb -x "$deb" "$work/root"
mkdir -p "$work/bin"
install -m 0755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$work/bin/"
"$work/bin/prometheus" --version >&2
rm -rf "$out"; mv "$work/bin" "$out"
echo "install.sh: installed ${out}" >&2
echo "$out"
