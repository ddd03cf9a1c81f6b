#!/usr/bin/env bash
# Installs the Debian packages the tests need (audio tools for generating test recordings),
# only when missing, so `make test` works on a fresh machine and costs nothing afterwards.
set -euo pipefail
needed=()
for tool in ffmpeg sox curl; do
  command -v "$tool" >/dev/null 2>&1 || needed+=("$tool")
done
[ ${#needed[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${needed[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
