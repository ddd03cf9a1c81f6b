#!/usr/bin/env bash
# Installs the Debian packages the tests need (audio tools that generate test recordings, curl for
# the README walkthrough, chromium for the /demo browser tests: Playwright drives it, downloads none;
# postgresql for the shared state store tests: initdb + pg_ctl into a temporary directory;
# redis-server for the shared upload locks, conformance/redis_server.py;
# nginx for the balancer over three instances (conformance/nginx_balancer.py) and for the
# resumable-upload draft behind a proxy, each with a configuration of its own on a free loopback port);
# podman, buildah, runc (crun fails on some cgroup layouts; the tests ask for runc), the CNI plugins and
# iptables (published ports), fuse-overlayfs, uidmap and slirp4netns (rootless use) and debootstrap
# (the Debian base image: registries are out of reach) for the container image test,
# only when missing, so `make test` works on a fresh machine and costs
# nothing afterwards.
set -euo pipefail
packages=(ffmpeg sox libsox-fmt-all curl chromium postgresql redis-server nginx
  podman buildah runc containernetworking-plugins iptables fuse-overlayfs uidmap slirp4netns debootstrap)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
