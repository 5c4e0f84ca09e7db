#!/usr/bin/env bash
# Make sure the servers the tests start are installed: redis-server from Debian's packages.
# (S3 is moto's server, from the venv; MongoDB is mongomock unless MONGODB_TEST_URI is set.)
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "installing redis-server for the store tests" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null
