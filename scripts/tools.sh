#!/usr/bin/env bash
# Installs the pinned Solidity tool chain under tools/node_modules (the solcjs compiler and
# Foundry's anvil, forge and cast, from npm) unless it is already there. Idempotent, silent when
# nothing needs doing, and safe to run concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."

SOLC_VERSION=0.8.37
FOUNDRY_VERSION=1.7.1

mods=tools/node_modules
installed() {
  [ -f "$mods/solc/solc.js" ] &&
    [ -x "$mods/@foundry-rs/anvil-linux-amd64/bin/anvil" ] &&
    [ -x "$mods/@foundry-rs/forge-linux-amd64/bin/forge" ] &&
    [ -x "$mods/@foundry-rs/cast-linux-amd64/bin/cast" ] &&
    grep -q "\"version\": \"$SOLC_VERSION\"" "$mods/solc/package.json" 2>/dev/null
}

installed && exit 0
mkdir -p tools
exec 9>tools/.lock
flock 9
installed && exit 0
echo "installing solc $SOLC_VERSION, anvil, forge and cast $FOUNDRY_VERSION into tools/" >&2
npm install --prefix tools --no-audit --no-fund --loglevel=error --save-exact \
  "solc@$SOLC_VERSION" "@foundry-rs/anvil@$FOUNDRY_VERSION" "@foundry-rs/forge@$FOUNDRY_VERSION" \
  "@foundry-rs/cast@$FOUNDRY_VERSION" >&2
if ! installed; then
  echo "tools.sh: the installation did not produce the expected binaries under $mods" >&2
  exit 1
fi
