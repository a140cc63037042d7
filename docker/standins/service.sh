#!/usr/bin/env bash
# Build an offline stand-in for a service image the labs use (redis:<N>, nginx:<X.Y>) FROM the local
# slim stand-in, with the service installed from Debian's packages. Used only when no registry answers.
# The recipe for IMAGE is IMAGE.Dockerfile here (redis.Dockerfile, nginx.Dockerfile).
#
# Usage: service.sh TAG    (for example redis:7; builds python:3.11-slim first if missing)
set -euo pipefail
tag=${1:?usage: service.sh TAG}
name=${tag%%:*}; name=${name##*/}
here=$(cd "$(dirname "$0")" && pwd)
base=python:3.11-slim
say() { printf '[stand-in] %s\n' "$*"; }

[ -f "$here/$name.Dockerfile" ] || { say "no recipe $name.Dockerfile for $tag"; exit 1; }
if ! docker image inspect "$base" >/dev/null 2>&1; then
  say "$base is missing: building it first"
  bash "$here/python-slim.sh" "$base"
fi

say "building $tag FROM $base with Debian's $name (apt, under a minute)..."
log=$(mktemp /tmp/standin-service.XXXXXX.log)
trap 'rm -f "$log"' EXIT
# BuildKit, as every build here: it takes the FROM image from the engine's own store when it is there.
if ! docker buildx build --load --provenance=false \
     --build-arg "BASE=$base" \
     --label org.mlcontainers.standin=true \
     --label "org.mlcontainers.standin.of=$tag" \
     -f "$here/$name.Dockerfile" -t "$tag" "$here" >"$log" 2>&1; then
  tail -n 30 "$log"; exit 1
fi
say "done: $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'), labeled as a stand-in)"
