#!/usr/bin/env bash
# Cross-builds the glioedge release binary for the box (aarch64, with the `rpi` GPIO feature).
# Usage: board/cross/build-aarch64.sh            → target/cross/aarch64-unknown-linux-gnu/release/glioedge
# Installs its tools on first use (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user-static and,
# when rustup has no aarch64 standard library, Debian's rustc-web/cargo-web + libstd-rust-web-dev:arm64).
source "$(dirname "$0")/env.sh"
install_cross_tools
echo "toolchain: $TOOLCHAIN"
cd "$REPO"
start=$(date +%s)
"$CARGO" build --release --locked --target "$TARGET" --features rpi
bin="$CARGO_TARGET_DIR/$TARGET/release/glioedge"
echo "built in $(( $(date +%s) - start )) s: $bin"
file "$bin" 2>/dev/null || true
