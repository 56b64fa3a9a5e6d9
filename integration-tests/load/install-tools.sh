#!/usr/bin/env bash
# Installs what the end-to-end benchmark (`xgate-bench e2e`) and the replica tests drive besides
# our own binaries: Debian's HAProxy (the TCP balancer of `xgate demo --replicas` and of the
# replica tests), Debian's nginx (arm b: grpc_pass with mTLS both ways) and h2load from nghttp2-client (the
# plaintext cross-check of the load client). Idempotent: installs only what is missing.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)

if [ ${#missing[@]} -eq 0 ]; then
    echo "nginx, h2load and haproxy are installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
fi

echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
# No service start during install: the benchmark runs its own nginx on loopback ports.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
