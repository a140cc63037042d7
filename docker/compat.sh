#!/usr/bin/env bash
# The compatibility pass: grade every reference solution on Debian 12's docker.io 20.10, the oldest engine
# this project supports, then put the current engine back.
#
# Only where `make engine` started the engine itself (root on Debian/Ubuntu, CI): it swaps engines, which
# it must never do to a learner's Docker Desktop or system service. The base images travel across with
# `docker save` / `docker load`, so the pass needs no registry and no second debootstrap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
py=${PY:-$root/.venv/bin/python}
run=/var/run/grader-engine
say() { printf '[compat] %s\n' "$*"; }

if [ "$(cat "$run/kind" 2>/dev/null)" != current ]; then
  say "skipped: the running engine was not started by 'make engine' (it is never swapped for another)"
  exit 0
fi
images=$("$py" -c 'from grader.spec import official_specs as o; print(" ".join(sorted({r for s in o().values() for r in s.base_images})))')
archive=$root/.cache/compat/images.tar
mkdir -p "$(dirname "$archive")"
say "saving the base images from the current engine: $images"
# shellcheck disable=SC2086
docker save --output "$archive" $images

back_to_current() {
  say "putting the current engine back..."
  ENGINE=current bash "$here/engine.sh" >/dev/null && say "current engine: $(docker version --format '{{.Server.Version}}')"
  rm -f "$archive"
}
trap back_to_current EXIT

ENGINE=legacy bash "$here/engine.sh"
say "loading the base images into $(docker version --format '{{.Server.Version}}')..."
docker load --input "$archive" >/dev/null
started=$(date +%s)
status=0
"$py" -m grader solutions --quiet || status=$?
say "graded every reference solution on Engine $(docker version --format '{{.Server.Version}}') in $(( $(date +%s) - started ))s: $([ $status = 0 ] && echo 'all full marks' || echo "FAILED (exit $status)")"
exit $status
