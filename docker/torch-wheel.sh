#!/usr/bin/env bash
# Put the CPU build of torch into lab 07's wheels/ folders (solution and starter), where its CPU image
# installs it from (lab.yaml: provided: [wheels]; never committed, see .gitignore).
#
# Where the wheel comes from, in order:
#   1. already there (same size as the source, or any size when there is no source): nothing to do;
#   2. a folder pip is configured to find wheels in (`pip config`: find-links): hard-linked, else copied;
#   3. PyTorch's CPU index: `pip download`, for the Python and platform of the image (python:3.11-slim),
#      not of this machine: Linux, on the engine's CPU architecture (x86_64, or aarch64 on Apple silicon
#      and other ARM machines, where Docker builds linux/arm64 images).
# Idempotent, and fast when the wheel is already in place.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=$(command -v python3)

version=${TORCH_VERSION:-2.13.0+cpu}
# The images are built for the engine's architecture, which is not always this machine's (Docker Desktop
# on a Mac runs a Linux VM): ask the engine, else take this machine's.
arch=$(docker version --format '{{.Server.Arch}}' 2>/dev/null || uname -m)
case "$arch" in
  arm64 | aarch64) machine=aarch64 ;;
  *) machine=x86_64 ;;
esac
platform=manylinux_2_28_$machine
wheel=${TORCH_WHEEL:-torch-${version}-cp311-cp311-${platform}.whl}
index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

say() { printf '[wheels] %s\n' "$*"; }

# The lab folders that provide wheels/ (the starter's may not exist before `make labs`).
targets=()
for lab in "$root"/solutions/07-* "$root"/labs/07-*; do
  [ -d "$lab" ] && targets+=("$lab/wheels")
done
if [ ${#targets[@]} -eq 0 ]; then
  say "no lab 07 folder under solutions/ or labs/: nothing to do"
  exit 0
fi

# The find-links folders pip is configured with (config files and PIP_FIND_LINKS), local ones only.
find_links_dirs() {
  "$python" -m pip config list 2>/dev/null | sed -n "s/^[^=]*find-links='\(.*\)'$/\1/p" | tr ' ' '\n' |
    sed 's|^file://||' | while read -r dir; do [ -d "$dir" ] && echo "$dir"; done
  for dir in ${PIP_FIND_LINKS:-}; do dir=${dir#file://}; [ -d "$dir" ] && echo "$dir"; done
  return 0
}

source_file=""
while read -r dir; do
  if [ -n "$dir" ] && [ -f "$dir/$wheel" ]; then source_file="$dir/$wheel"; break; fi
done < <(find_links_dirs)

size_of() { wc -c <"$1" 2>/dev/null | tr -d ' ' || echo 0; }  # GNU and BSD (macOS) stat differ

for target in "${targets[@]}"; do
  rel=${target#"$root"/}
  if [ -f "$target/$wheel" ] && { [ -z "$source_file" ] || [ "$(size_of "$target/$wheel")" = "$(size_of "$source_file")" ]; }; then
    say "$rel/$wheel is there"
    continue
  fi
  mkdir -p "$target"
  rm -f "$target/$wheel"
  if [ -n "$source_file" ]; then
    if ln "$source_file" "$target/$wheel" 2>/dev/null; then
      say "$rel/$wheel: hard link to $source_file"
    else
      cp "$source_file" "$target/$wheel"
      say "$rel/$wheel: copied from $source_file"
    fi
    continue
  fi
  say "downloading $wheel from $index (about 190 MB, once)..."
  if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --platform "$platform" \
    --index-url "$index" --dest "$target" "torch==$version" || [ ! -f "$target/$wheel" ]; then
    rmdir "$target" 2>/dev/null || true
    say "could not get $wheel from $index."
    say "Offline? Put the wheel in a folder and name it in pip's settings (pip config set global.find-links DIR),"
    say "or set TORCH_CPU_INDEX to a mirror of PyTorch's CPU index; then run 'make wheels' again."
    exit 1
  fi
  # The other folders take it from here: the next loop round finds it as the source.
  source_file="$target/$wheel"
done
