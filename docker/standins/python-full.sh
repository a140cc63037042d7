#!/usr/bin/env bash
# Build an offline stand-in for the official python:<X.Y> ("full") image FROM the local slim stand-in.
#
# Used only when no registry is reachable. The real full image adds to slim what building software
# needs: compilers (gcc, g++, make, libc headers), the -dev headers of common libraries (OpenSSL,
# libffi, zlib...), git, curl and wget. python-full.Dockerfile installs a representative subset with
# apt, so a Dockerfile that compiles a C extension builds here as it would there, and curl/gcc exist
# here as they do there. Differences from the real image: Python is Debian's (as in the slim
# stand-in), and it is smaller (the real one carries far more -dev packages, ~1 GB).
#
# Usage: python-full.sh TAG    (for example python:3.11; builds python:3.11-slim first if missing)
set -euo pipefail
tag=${1:?usage: python-full.sh TAG}
case "$tag" in
  *-slim*) printf '[stand-in] %s is a slim tag: use python-slim.sh\n' "$tag"; exit 1 ;;
esac
slim="${tag}-slim"
here=$(cd "$(dirname "$0")" && pwd)

say() { printf '[stand-in] %s\n' "$*"; }

if ! docker image inspect "$slim" >/dev/null 2>&1; then
  say "$slim is missing: building it first"
  bash "$here/python-slim.sh" "$slim"
fi

say "building $tag FROM $slim with compilers, headers, git, curl and wget (apt, a minute or two)..."
log=$(mktemp /tmp/standin-full.XXXXXX.log)
trap 'rm -f "$log"' EXIT
# BuildKit, as every build here: it takes the FROM image from the engine's own store when it is there.
if ! docker buildx build --load --provenance=false \
     --build-arg "BASE=$slim" \
     --label org.mlcontainers.standin=true \
     --label "org.mlcontainers.standin.of=$tag" \
     -f "$here/python-full.Dockerfile" -t "$tag" "$here" >"$log" 2>&1; then
  tail -n 30 "$log"; exit 1
fi

for tool in gcc g++ make curl wget git; do
  docker run --rm --entrypoint sh "$tag" -c "command -v $tool" >/dev/null \
    || { say "unexpected: $tool is missing from $tag"; exit 1; }
done
docker run --rm --entrypoint python "$tag" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h")))' \
  || { say "unexpected: Python.h is missing from $tag"; exit 1; }
say "done: $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'), labeled as a stand-in)"
