# Shared settings for the aarch64 cross scripts (sourced, not run).
# The box is a Raspberry-Pi-5-class aarch64 computer; every build machine here is x86_64.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The caller's PATH, for host (x86_64) builds: the Debian path below puts /usr/bin first.
HOST_PATH="$PATH"
TARGET=aarch64-unknown-linux-gnu
# Build output of its own, so cross builds never invalidate the host build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_AARCH64:-$REPO/target/cross}"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# qemu as the runner: a Cortex-A72-class CPU (no SVE, as on a Pi), and the cross glibc's own
# libraries first (without LD_LIBRARY_PATH every thread start hangs: two arm64 glibc builds mix).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu cortex-a72 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib"
export TRACT_CPU_AARCH64_KIND=a72

# Which cargo: rustup's if it has the aarch64 standard library, else Debian's rustc-web/cargo-web.
if rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  CARGO=cargo
  TOOLCHAIN="rustup $(rustc --version)"
else
  CARGO=/usr/bin/cargo
  export PATH="/usr/bin:$PATH"
  export RUSTC=/usr/bin/rustc
  TOOLCHAIN="debian $(/usr/bin/rustc --version 2>/dev/null || echo missing)"
fi

# Installs what the scripts need; does nothing when it is already there.
install_cross_tools() {
  local need=()
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
  [ -d /usr/aarch64-linux-gnu/lib ] && [ -e /usr/aarch64-linux-gnu/lib/libc.so ] || need+=(libc6-dev-arm64-cross)
  command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
  if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    [ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q "1\.9[6-9]\|1\.[1-9][0-9][0-9]" || need+=(rustc-web cargo-web)
    [ -d /usr/lib/rustlib/$TARGET/lib ] || need+=(libstd-rust-web-dev:arm64)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    # Always refresh first: with stale lists apt offers bookworm's rustc-web 1.85 instead of
    # bookworm-security's current one (the lock file needs the newer compiler).
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
  fi
  if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    CARGO=/usr/bin/cargo
    export PATH="/usr/bin:$PATH"
    export RUSTC=/usr/bin/rustc
    TOOLCHAIN="debian $(/usr/bin/rustc --version)"
  fi
}
