#!/usr/bin/env bash
# The project's test command: formatting, lints, every test, docs, and the crate boundaries.
# Benchmarks are not run here beyond a smoke run with tiny sizes (a test).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

step "contracts"
# The mainchain contracts' own tests (forge with the pinned solcjs); the bridge's end-to-end
# test on anvil runs with the other tests above.
scripts/test-contracts.sh

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "boundaries"
# The protocol crate does no I/O: no async runtime, no randomness, no network or storage crates.
# (getrandom is linked by the curve library for key generation; the protocol only verifies.)
forbidden='^(tokio|rand|reqwest|hyper|redb|mio|socket2|axum|jsonrpsee) '
if cargo tree -p xiebao-protocol -e normal --prefix none --locked | grep -E "$forbidden"; then
  echo "xiebao-protocol depends on an I/O or randomness crate (listed above)" >&2
  exit 1
fi

# The binary is parsing and printing: no subcommand module imports another (shared helpers live
# in common.rs, everything else in the libraries).
commands=$(ls bin/xiebao/src/*.rs | xargs -n1 basename | sed 's/\.rs$//' | grep -vx -e main -e common | paste -sd'|')
if grep -nE "crate::($commands)::" bin/xiebao/src/*.rs | grep -v '^bin/xiebao/src/main.rs:'; then
  echo "a subcommand module of bin/xiebao imports another one (listed above): move what they share to common.rs or a library" >&2
  exit 1
fi

step "demo"
cargo run --quiet --locked -p xiebao -- demo --volume 4 >/dev/null

echo
echo "all checks passed"
