#!/usr/bin/env bash
# Installs the Debian packages the tests need (audio tools that generate test recordings, curl for
# the README walkthrough, chromium for the /demo browser tests: Playwright drives it, downloads none;
# nginx for the resumable-upload draft behind a proxy),
# only when missing, so `make test` works on a fresh machine and costs
# nothing afterwards.
set -euo pipefail
packages=(ffmpeg sox libsox-fmt-all curl chromium nginx)
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
