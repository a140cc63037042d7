#!/usr/bin/env bash
# Build an offline stand-in for the official python:<X.Y>-slim image from Debian packages.
#
# Used only when no registry is reachable. The stand-in is Debian bookworm (as the real image is)
# with Debian's python3, pip and venv, and deliberately nothing more: like the real image it has no
# curl, no wget and no compilers, so a Dockerfile that relies on them fails here as it would there.
# Differences from the real image, kept as small as we can: Python is Debian's build (bookworm ships
# 3.11), and the host's CA bundle is copied in so pip works behind a TLS-intercepting network.
#
# Usage: python-slim.sh TAG    (for example python:3.11-slim)
set -euo pipefail
tag=${1:?usage: python-slim.sh TAG}
suite=${DEBIAN_SUITE:-bookworm}
want=${tag#python:}; want=${want%%-*}

say() { printf '[stand-in] %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { say "building a stand-in needs root (debootstrap); run 'sudo make images'"; exit 1; }
command -v debootstrap >/dev/null || {
  say "installing debootstrap..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

# Use the same Debian mirror the machine's apt already uses.
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | head -n 1 | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /tmp/standin-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
say "debootstrap $suite from $mirror (about a minute)..."
# libpython3-dev: the official image ships Python.h, so a derived image that adds a compiler can build C extensions.
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,libpython3-dev,ca-certificates \
  "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

have=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$have" != "$want" ]; then
  say "Debian $suite ships Python $have, not $want: no faithful stand-in for $tag can be made"
  exit 1
fi
full=$(chroot "$rootfs" python3 -c 'import platform; print(platform.python_version())')

# The official image has `python` and `pip` commands and lets pip install system-wide.
ln -sf python3 "$rootfs/usr/bin/python"
ln -sf pip3 "$rootfs/usr/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
# Trust the same CAs as the host (this network may intercept TLS), also for a pip that upgrades itself.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
# apt settings the official Debian images ship, so derived images do not keep apt's caches and indexes.
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
# Trim what the official slim image also leaves out.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

for tool in curl wget gcc cc make; do
  if chroot "$rootfs" sh -c "command -v $tool" >/dev/null 2>&1; then
    say "unexpected: $tool is in the stand-in, which the real $tag does not have"; exit 1
  fi
done

say "importing as $tag (Python $full)..."
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV PYTHON_VERSION=$full" \
  --change 'CMD ["python3"]' \
  --change 'LABEL org.mlcontainers.standin=true' \
  --change "LABEL org.mlcontainers.standin.of=$tag" \
  --change "LABEL org.mlcontainers.standin.source=debian-$suite" \
  - "$tag" >/dev/null
say "done: $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'), labeled as a stand-in)"
