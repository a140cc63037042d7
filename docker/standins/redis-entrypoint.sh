#!/bin/sh
# Like the official image's entrypoint: flags alone mean "redis-server FLAGS", and redis-server started
# without a config file listens on every interface with protected mode off (the container's network is
# the boundary, not Redis' own loopback-only default).
set -e
case "$1" in -*) set -- redis-server "$@" ;; esac
if [ "$1" = "redis-server" ]; then
  case "$2" in
    *.conf) ;;
    *) shift; set -- redis-server --protected-mode no "$@" ;;
  esac
fi
exec "$@"
