#!/usr/bin/env bash
# Installs what the registry tests need; idempotent.
#  - docker-registry: Debian's package of the CNCF distribution registry. The
#    tests start their own instance on a loopback port with a generated config,
#    so the packaged service is disabled and stopped.
#  - oras: an independent OCI client for the interoperability test, built from
#    the Go module proxy into $(go env GOPATH)/bin.
set -euo pipefail

ORAS_VERSION=v1.3.6

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v docker-registry >/dev/null; then
    echo "setup-registry: installing docker-registry (apt)"
    sudo_if_needed apt-get update -qq
    # policy-rc.d may refuse to start the service; that is what we want anyway.
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq docker-registry >/dev/null
fi
# The packaged service would listen on :5000 for every user; tests run their own.
if command -v systemctl >/dev/null && systemctl is-enabled docker-registry >/dev/null 2>&1; then
    sudo_if_needed systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/docker-registry ] && command -v update-rc.d >/dev/null; then
    sudo_if_needed update-rc.d docker-registry disable >/dev/null 2>&1 || true
fi

gobin="$(go env GOBIN 2>/dev/null || true)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if ! [ -x "$gobin/oras" ] || ! "$gobin/oras" version 2>/dev/null | grep -q "${ORAS_VERSION#v}"; then
    echo "setup-registry: building oras $ORAS_VERSION (go install)"
    GOFLAGS=-mod=mod go install "oras.land/oras/cmd/oras@$ORAS_VERSION"
fi
echo "setup-registry: docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}'), oras at $gobin/oras"
