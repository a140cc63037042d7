# Offline stand-in for the official nginx:<X.Y> image, built FROM the local slim stand-in with Debian's
# nginx (see service.sh). It keeps the layout a Compose file relies on: /etc/nginx/nginx.conf includes
# /etc/nginx/conf.d/*.conf (mount your server block as conf.d/default.conf), the default site listens on
# port 80, curl is there (for healthchecks, as in the official image), logs go to the container's stdout
# and stderr, and the container stops on SIGQUIT (graceful).
ARG BASE=python:3.11-slim
FROM ${BASE}

RUN apt-get update \
 && cp /etc/ssl/certs/ca-certificates.crt /tmp/host-ca.crt \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mv /tmp/host-ca.crt /etc/ssl/certs/ca-certificates.crt \
 && rm -f /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log

COPY nginx-default.conf /etc/nginx/conf.d/default.conf
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
