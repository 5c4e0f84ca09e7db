#!/usr/bin/env bash
# Build (or reuse) the project's virtual environment and print its path on stdout.
#
# The venv lives outside the repository, keyed by a hash of the requirement files and the lock,
# so a fresh clone on the same machine (CI included) reuses it, and a change to either file builds
# a new one. Older venvs of this project are removed (each is several GB).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
base=${MUGPOS_VENV_HOME:-$HOME/.cache/mug-positioning-worker}
key=$(cat "$root/requirements.txt" "$root/requirements-dev.txt" "$root/constraints.txt" | sha256sum | cut -c1-16)
venv="$base/venv-$key"
mkdir -p "$base"
exec 9>"$base/.lock"
flock 9  # one build at a time: a second caller waits for the first, then reuses its venv

if [ ! -f "$venv/.complete" ] || [ ! -x "$venv/bin/python" ]; then
  echo "building the virtual environment in $venv (a few minutes, once)" >&2
  find "$base" -maxdepth 1 -name 'venv-*' ! -name "venv-$key" -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$venv"
  "$python" -m venv "$venv"
  log="$base/install-$key.log"
  if ! "$venv/bin/pip" install --progress-bar off -r "$root/requirements-dev.txt" -c "$root/constraints.txt" >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -40 >&2
    echo "pip install failed; full log: $log" >&2
    exit 1
  fi
  touch "$venv/.complete"
fi
echo "$venv"
