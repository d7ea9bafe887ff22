#!/usr/bin/env bash
# Installs Debian's Prometheus (the package's /usr/bin/prometheus and /usr/bin/promtool only: no service scripts,
# no system changes) into ${CROUPIER_CACHE:-~/.cache/croupier}/prometheus/<version>/bin and prints that folder.
# The .deb comes from `apt-get download` (the apt sources configured here; no root needed). With both binaries present
# it returns at once; concurrent runs wait for each other (flock) instead of unpacking twice.
# Env: CROUPIER_CACHE (cache root), CROUPIER_PROMETHEUS_VERSION (Debian upstream version to expect; default 2.42.0).
set -euo pipefail
VERSION=${CROUPIER_PROMETHEUS_VERSION:-2.42.0}
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
candidate=$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')
case "$candidate" in
  "${VERSION}"+*|"${VERSION}"-*) ;;
  *) echo "install.sh: apt offers prometheus '${candidate:-none}', expected ${VERSION} (run apt-get update, or set" \
          "CROUPIER_PROMETHEUS_VERSION)" >&2; exit 1 ;;
esac
echo "install.sh: downloading prometheus ${candidate} with apt-get download" >&2
(cd "$work" && apt-get download -q "prometheus=${candidate}" >&2)
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$work/bin"
install -m 0755 "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$work/bin/"
"$work/bin/prometheus" --version >&2
rm -rf "$out"; mv "$work/bin" "$out"
echo "install.sh: installed ${out}" >&2
echo "$out"
