#!/bin/sh
# The wheelhouse the Containerfile installs from (its build context's dist/):
# usermgmt's wheel and its dependencies' wheels at the versions of
# constraints.txt, so the image runs what the test suite passed with, and its
# build needs no package index.
#
#   deploy/wheelhouse.sh [PYTHON] [DIR]      (defaults: .venv/bin/python, dist)
#
# PYTHON must be a 3.11, as Debian bookworm's (binary wheels are per version).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-$root/.venv/bin/python}
dir=$(realpath -m "${2:-$root/dist}")
rm -rf "$dir"
# async-timeout: redis needs it on Python < 3.11.3 (bookworm's is 3.11.2), which
# a newer build Python would not fetch.
cd "$root"
"$python" -m pip wheel --quiet --disable-pip-version-check -c constraints.txt \
  --wheel-dir "$dir" '.[redis]' 'async-timeout>=4.0.3'
