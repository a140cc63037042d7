# Offline stand-in for the official python:<X.Y> ("full") image, built FROM the local slim stand-in
# by python-full.sh (see there). The real full image is Debian's buildpack-deps plus Python: compilers,
# the headers of common libraries, version control and download tools. We install a representative
# subset, so a Dockerfile that needs a compiler builds here as it would on the real image, and the
# slim-versus-full size gap a learner measures has the right sign and order of magnitude.
ARG BASE=python:3.11-slim
FROM ${BASE}

# One layer, cleaned in the same RUN as the real image does: no apt lists or .deb files are left.
# python3-dev stands for the Python headers (Python.h) the real image has under /usr/local/include.
# The CA bundle is saved and put back: the slim stand-in carries the host's bundle (this network may
# intercept TLS), and a ca-certificates trigger must not replace it with Debian's own.
RUN apt-get update \
 && cp /etc/ssl/certs/ca-certificates.crt /tmp/host-ca.crt \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc g++ make libc6-dev pkg-config \
      curl wget git \
      libffi-dev libssl-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev \
      python3-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mv /tmp/host-ca.crt /etc/ssl/certs/ca-certificates.crt
