#!/usr/bin/env bash
# Runs the Solidity tests under contracts/test with forge, compiling with the pinned solcjs.
# Extra arguments go to `forge test` (e.g. --match-test NAME, -vvv).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/tools.sh

# forge cannot download a compiler here, so it gets the pinned solcjs dressed as native solc:
# forge reads the version from `solc --version` and compiles through `solc --standard-json`.
shim_dir="$(mktemp -d)"
trap 'rm -rf "$shim_dir"' EXIT
cat >"$shim_dir/solc" <<SHIM
#!/usr/bin/env bash
set -euo pipefail
solcjs="$root/tools/node_modules/solc/solc.js"
case " \$* " in
  *" --version "*)
    version="\$(node "\$solcjs" --version | sed 's/\.Emscripten\.clang//')"
    printf 'solc, the solidity compiler commandline interface\nVersion: %s.Linux.g++\n' "\$version"
    ;;
  *" --standard-json "*)
    # solcjs adds ">>>" notes to its JSON output, which forge must get alone. Its output goes
    # to a file first: written to a pipe, it is cut off at 64 KiB when node exits.
    output="\$(mktemp)"
    trap 'rm -f "\$output"' EXIT
    node "\$solcjs" --standard-json >"\$output"
    grep -v '^>>>' "\$output"
    ;;
  *) exec node "\$solcjs" "\$@" ;;
esac
SHIM
chmod +x "$shim_dir/solc"

cd contracts
mkdir -p forge-cache
exec 9>forge-cache/.lock
flock 9
"$root/tools/node_modules/@foundry-rs/forge-linux-amd64/bin/forge" test --offline --use "$shim_dir/solc" "$@"
