#!/usr/bin/env bash
# System tools some tests need, from Debian's packages: chromium + chromium-driver (browser tests of
# the analyst console) and prometheus (promtool checks the alert rules). Installs only what is
# missing; needs root (or sudo) and apt-get. Without them those tests skip outside CI.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_tools: no apt-get here; install ${need[*]} yourself" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install_test_tools: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
