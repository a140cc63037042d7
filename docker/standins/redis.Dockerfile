# Offline stand-in for the official redis:<N> image, built FROM the local slim stand-in with Debian's
# redis-server (see service.sh). It keeps the interface a Compose file relies on: `redis-server` and
# `redis-cli` on PATH, data in /data (a volume, the working directory, so RDB/AOF files land there),
# port 6379, a non-root `redis` user, and the official entrypoint's one behaviour that matters: a plain
# `redis-server ...` command runs with protected mode off, so other containers on the network may connect.
ARG BASE=python:3.11-slim
FROM ${BASE}

RUN apt-get update \
 && cp /etc/ssl/certs/ca-certificates.crt /tmp/host-ca.crt \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-tools \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mv /tmp/host-ca.crt /etc/ssl/certs/ca-certificates.crt \
 && mkdir -p /data && chown redis:redis /data

COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
