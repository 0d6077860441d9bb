#!/usr/bin/env bash
# Runs the library tests and the parity tests that need no host binary under qemu (Cortex-A72),
# then analyses one phantom case with the aarch64 binary and with the x86_64 binary and compares
# every number in result.json and features.csv (tolerance 1e-5 relative).
# Usage: board/cross/test-aarch64.sh [--skip-tests]
source "$(dirname "$0")/env.sh"
install_cross_tools
cd "$REPO"
export GLIOEDGE_TEST_DATA="${GLIOEDGE_TEST_DATA:-$(cd "$REPO/.." && pwd)/shared/data}"
RUN="$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "${1:-}" != "--skip-tests" ]; then
  echo "== aarch64 tests under qemu ($TOOLCHAIN)"
  # Integration tests that start the glioedge binary as a subprocess cannot run here (binfmt is
  # not mounted, so the aarch64 binary cannot be exec'd directly); the library tests and the
  # data-parity tests exercise the same numeric code.
  tests=()
  for t in volume_parity report_folder radiomics_parity radiomics_filters stats_parity fusion; do
    [ -f "tests/$t.rs" ] && tests+=(--test "$t")
  done
  "$CARGO" test --locked --target "$TARGET" --lib "${tests[@]}"
fi

echo "== one phantom case: x86_64 vs aarch64"
"$(dirname "$0")/build-aarch64.sh" >/dev/null
arm_bin="$CARGO_TARGET_DIR/$TARGET/release/glioedge"
( unset CARGO_TARGET_DIR; cargo build --release --locked ) >/dev/null
host_bin="$REPO/target/release/glioedge"
"$host_bin" phantom --out "$work/cohort" --cases 1 --seed 7 >/dev/null
case_dir="$(find "$work/cohort" -mindepth 1 -maxdepth 1 -type d | head -1)"
"$host_bin" run "$case_dir" --out "$work/x86" >/dev/null
# shellcheck disable=SC2086
$RUN "$arm_bin" run "$case_dir" --out "$work/arm" 2> "$work/arm.log" >/dev/null
grep -m1 -o 'arm64simd[A-Za-z0-9_]*' "$work/arm.log" | sed 's/^/tract kernel seen: /' || true
python3 "$(dirname "$0")/compare_results.py" "$work/x86" "$work/arm"
