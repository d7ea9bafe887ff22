#!/usr/bin/env bash
# Installs what Croupier's demo and tests need on a fresh Debian/Ubuntu machine, skipping what is already there:
# uv (Python toolchain + locked dependencies), redis-server (the Redis state backend's tests), a JDK and Maven (the
# Java SDK's tests), and checks Go (the local control plane is built from Go modules). Idempotent; safe to run on
# every `make`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The Java SDK (clients/java, `make test-java`): a JDK 17+ with javac, and Maven.
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${CROUPIER_BENCH:-0}" = 1 ]; then command -v wrk >/dev/null 2>&1 || need_apt+=(wrk); fi
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "bootstrap: please install: ${need_apt[*]} (apt-get install -y ${need_apt[*]})" >&2; exit 1; fi
  echo "bootstrap: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  # The Debian package starts a system-wide server on 6379; tests start their own on random loopback ports.
  (command -v systemctl >/dev/null 2>&1 && $SUDO systemctl disable --now redis-server >/dev/null 2>&1) || true
fi

if ! command -v go >/dev/null 2>&1; then
  echo "bootstrap: Go is required to build the local control plane (kube-apiserver, etcd, kwok) from Go modules;" \
       "install Go >= 1.25 (https://go.dev/doc/install) or set CROUPIER_CONTROLPLANE_BIN to prebuilt binaries." >&2
  [ -n "${CROUPIER_CONTROLPLANE_BIN:-}" ] || exit 1
fi

# pip --user puts uv into ~/.local/bin, which is often not on PATH: the Makefile's UV looks there too.
if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet --user uv >&2 || python3 -m pip install --quiet --break-system-packages uv >&2
  if ! command -v uv >/dev/null 2>&1 && [ -x "$HOME/.local/bin/uv" ]; then
    echo "bootstrap: uv is in ~/.local/bin, not on your PATH (make finds it); to run uv yourself:" \
         'export PATH="$HOME/.local/bin:$PATH"' >&2
  fi
fi
