#!/usr/bin/env bash
# Builds every demo app under apps/ for wasm32-wasip1 into target/apps/NAME.wasm, the same way
# crates/apps/build.rs does for the modules that crate embeds.
set -euo pipefail
cd "$(dirname "$0")/.."

target=wasm32-wasip1
libdir="$(rustc --print target-libdir --target "$target")"
if ! ls "$libdir"/libstd-* >/dev/null 2>&1; then
  echo "the $target target is not installed: run \`rustup target add $target\`" >&2
  exit 1
fi

build_dir="$PWD/target/apps-build"
out_dir="$PWD/target/apps"
mkdir -p "$out_dir"
for manifest in apps/*/Cargo.toml; do
  app="$(basename "$(dirname "$manifest")")"
  # Flags and wrappers meant for host builds must not reach the apps' build.
  env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
    -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER \
    cargo build --release --locked --target "$target" --manifest-path "$manifest" \
    --target-dir "$build_dir"
  cp "$build_dir/$target/release/$app.wasm" "$out_dir/$app.wasm"
  echo "$out_dir/$app.wasm ($(wc -c <"$out_dir/$app.wasm") bytes)"
done
