#!/usr/bin/env bash
# Creates .venv with the Python packages the tests use as an independent implementation
# (eth-account: EIP-712 hashing, signatures, V3 keystores). Safe to run concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>.venv.lock
flock 9
if [ ! -x .venv/bin/python3 ] || ! .venv/bin/python3 -c 'import eth_account' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'eth-account==0.13.7'
fi
