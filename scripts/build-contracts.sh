#!/usr/bin/env bash
# Compiles the mainchain contracts (contracts/src/Rlc.sol and Bridge.sol) with the pinned
# solcjs, optimizer on, into contracts/out/NAME.bin (creation bytecode, hex without 0x) and
# contracts/out/NAME.abi (JSON). Does nothing when the outputs are newer than the sources.
# Fails on any compiler error. Safe to run concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/tools.sh

contracts=(Rlc Bridge)
src=contracts/src
out=contracts/out

up_to_date() {
  local name source
  for name in "${contracts[@]}"; do
    for source in "$src"/*.sol scripts/build-contracts.sh tools/node_modules/solc/package.json; do
      [ "$out/$name.bin" -nt "$source" ] && [ "$out/$name.abi" -nt "$source" ] || return 1
    done
  done
}

up_to_date && exit 0
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
up_to_date && exit 0

build="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$build"' EXIT
sources=()
for name in "${contracts[@]}"; do sources+=("$src/$name.sol"); done

# Prints the compiler's messages, less solcjs's ">>>" notes and the shadowing warnings: some
# parameters of Bridge deliberately share the names of its view functions (the ABI names them
# `validators`, `threshold`, ...). contracts/foundry.toml ignores the same warning (code 8760).
show_log() {
  awk '
    /^>>>/ { next }
    /^Warning: This declaration (has the same name as|shadows) / { skip = 1; next }
    /^[A-Za-z]*(Error|Warning|Info|Exception):/ { skip = 0 }
    !skip
  ' "$build/log" | sed '/^[[:space:]]*$/d' >&2
}
if ! node tools/node_modules/solc/solc.js --bin --abi --optimize --base-path . -o "$build" \
  "${sources[@]}" >"$build/log" 2>&1; then
  show_log
  echo "build-contracts.sh: compilation failed" >&2
  exit 1
fi
show_log

for name in "${contracts[@]}"; do
  prefix="$build/contracts_src_${name}_sol_${name}"
  if [ ! -s "$prefix.bin" ] || [ ! -s "$prefix.abi" ]; then
    echo "build-contracts.sh: solc produced no output for $name" >&2
    exit 1
  fi
  # Write beside the target, then rename, so that a reader never sees half a file.
  tr -d '\n' <"$prefix.bin" >"$build/$name.bin"
  cp "$prefix.abi" "$build/$name.abi"
  mv -f "$build/$name.abi" "$out/$name.abi"
  mv -f "$build/$name.bin" "$out/$name.bin"
done
echo "compiled ${contracts[*]} into $out" >&2
