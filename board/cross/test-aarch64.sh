#!/usr/bin/env bash
# Runs the library tests and the parity tests that need no host binary under qemu (Cortex-A72),
# then analyses one phantom case with the aarch64 binary and with the x86_64 binary and compares
# every number in result.json and features.csv (tolerance 1e-5 relative; deep features relative to
# their sequence's largest |value|, see compare_results.py).
# Usage: board/cross/test-aarch64.sh [--skip-tests]
#   KEEP=DIR   keep the phantom case, both result folders and the aarch64 log in DIR
source "$(dirname "$0")/env.sh"
install_cross_tools
cd "$REPO"
export GLIOEDGE_TEST_DATA="${GLIOEDGE_TEST_DATA:-$(cd "$REPO/.." && pwd)/shared/data}"
RUN="$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"
if [ -n "${KEEP:-}" ]; then
  work="$KEEP"; mkdir -p "$work"
else
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fi

if [ "${1:-}" != "--skip-tests" ]; then
  echo "== aarch64 tests under qemu ($TOOLCHAIN)"
  # Integration tests that start the glioedge binary as a subprocess cannot run here (binfmt is
  # not mounted, so the aarch64 binary cannot be exec'd directly); the library tests and the
  # data-parity tests exercise the same numeric code. Release profile and the same features as
  # build-aarch64.sh: the tests then reuse the release build's dependencies (a debug/test-profile
  # cross build of tract & co. would be another half hour) and check the code that ships.
  tests=()
  for t in volume_parity report_folder radiomics_parity radiomics_filters stats_parity fusion; do
    [ -f "tests/$t.rs" ] && tests+=(--test "$t")
  done
  "$CARGO" test --release --locked --target "$TARGET" --features rpi --lib "${tests[@]}"
fi

echo "== one phantom case: x86_64 vs aarch64"
"$(dirname "$0")/build-aarch64.sh" >/dev/null
arm_bin="$CARGO_TARGET_DIR/$TARGET/release/glioedge"
# The host binary with the caller's own toolchain (not Debian's, which the cross build may use)
# and the normal target directory, so the usual x86_64 build is reused, not invalidated.
( export PATH="$HOST_PATH"; unset CARGO_TARGET_DIR RUSTC; cargo build --release --locked ) >/dev/null
host_bin="$REPO/target/release/glioedge"
"$host_bin" phantom --out "$work/cohort" --cases 1 --seed 7 >/dev/null
case_dir="$(find "$work/cohort" -mindepth 1 -maxdepth 1 -type d | head -1)"
# One precision on both sides. Default: f32, the precision the bundled package is fitted at
# (what `auto` runs on the box). PRECISIONS="f32 int8" adds the int8-activation graph, whose
# deep features are expected to differ between CPUs by more than 1e-5 (quantisation steps).
status=0
for prec in ${PRECISIONS:-f32}; do
  # (relative paths in a config file are taken from the file's folder: name the model fully)
  printf '[inference]\nprecision = "%s"\nmodel = "%s"\n' "$prec" "$REPO/models/demo-convnext-tiny" \
    > "$work/$prec.toml"
  "$host_bin" --config "$work/$prec.toml" run "$case_dir" --out "$work/x86-$prec" >/dev/null
  # shellcheck disable=SC2086
  GLIOEDGE_LOG="warn,glioedge::inference=debug,tract_linalg=info" \
    $RUN "$arm_bin" --config "$work/$prec.toml" run "$case_dir" --out "$work/arm-$prec" \
    2> "$work/arm-$prec.log" >/dev/null
  echo "-- precision $prec"
  grep -h -m3 -e 'CPU optimisation' -e 'SVE' -e 'kernels selected' "$work/arm-$prec.log" | sed 's/^/aarch64 log: /' || true
  python3 "$(dirname "$0")/compare_results.py" "$work/x86-$prec" "$work/arm-$prec" || status=1
done
exit $status
