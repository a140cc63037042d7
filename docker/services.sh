#!/usr/bin/env bash
# Redis and PostgreSQL from Debian's packages: the broker and the shared gradebook for grading past one
# machine (`python -m grader worker`, `batch --workers`), and for its tests (tests/engine/test_workers.py
# starts its own instances in a temporary folder, on free ports of 127.0.0.1).
#
# Installs what is missing, as root on Debian/Ubuntu, and leaves the packages' system services neither
# running nor started at boot: the tests start their own, and an instructor starts them where the
# workers can reach them (see README.md, "Grading past one machine"). Without root nothing is changed
# and the command to run is printed instead. Idempotent: when both are there it returns at once.
set -euo pipefail

say() { printf '[services] %s\n' "$*"; }

# Debian keeps PostgreSQL's server programs (initdb, pg_ctl, postgres) off PATH, under its version.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! [ -x "$(pg_bin)/initdb" ]; then
  missing+=(postgresql)
fi

if [ ${#missing[@]} -eq 0 ]; then
  say "$(redis-server --version | cut -d' ' -f1-3) and PostgreSQL $("$(pg_bin)/postgres" --version 2>/dev/null | awk '{print $3}' || true) are installed."
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "Missing: ${missing[*]}. On Debian/Ubuntu: sudo apt-get install -y --no-install-recommends ${missing[*]}"
  say "(grading workers and their tests need them; the tests skip without them outside CI)"
  exit 0
fi

# Keep the packages from starting their services while they install (the usual policy-rc.d of images).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

say "Installing Debian's ${missing[*]} (the system services are left stopped and disabled)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# ...nor start them at boot.
for service in redis-server postgresql; do
  if [ -d /run/systemd/system ]; then
    systemctl disable --now --quiet "$service" 2>/dev/null || true
  elif command -v update-rc.d >/dev/null 2>&1 && [ -e "/etc/init.d/$service" ]; then
    update-rc.d "$service" disable >/dev/null 2>&1 || true
  fi
done

say "$(redis-server --version | cut -d' ' -f1-3) and PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') are installed."
