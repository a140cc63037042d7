#!/usr/bin/env bash
# Headless Chromium for the class-report test (tests/unit/test_class_report.py opens the report in it).
#
# Uses a chromium already on PATH; otherwise, as root on Debian/Ubuntu, installs Debian's `chromium`
# package. Without root nothing is changed and the command to run is printed instead: the test then
# skips with that reason on a laptop, and fails in CI (CI=true).
# Idempotent: when chromium is present it returns at once.
set -euo pipefail

say() { printf '[chromium] %s\n' "$*"; }

for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    say "$("$name" --version 2>/dev/null || echo "$name") is installed."
    exit 0
  fi
done

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "No chromium on PATH. On Debian/Ubuntu: sudo apt-get install -y --no-install-recommends chromium"
  say "(only the class-report test needs it; it skips without it outside CI)"
  exit 0
fi

say "Installing Debian's chromium package (headless use only)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
say "$(chromium --version) installed."
