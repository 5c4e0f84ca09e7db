#!/usr/bin/env bash
# Make sure the programs the tests start are installed, from Debian's packages: redis-server (store
# tests) and chromium (the batch report opened headless). S3 is moto's server, from the venv;
# MongoDB is mongomock unless MONGODB_TEST_URI is set.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} for the tests" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v redis-server >/dev/null && command -v chromium >/dev/null
