#!/usr/bin/env bash
# Soak test of the appliance (not run in CI): 100 cases dropped in rounds, with a random
# kill -9 + restart of `glioedge serve` after each round (10 in all). At the end every case
# must be in outbox/ or failed/ exactly once (no duplicate, no loss), the bad ones in failed/
# with error.json, and inbox/ work/ tmp/ empty.
#
#   tests/soak.sh                      # uses target/release/glioedge if built, else debug
#   GLIOEDGE_BIN=... SOAK_CASES=100 SOAK_KILLS=10 SOAK_SEED=<case folder> tests/soak.sh
#
# Every case runs the real pipeline (radiomics, the demo ConvNeXt-Tiny, report) as `serve` does.
# Cases are copies of the real BraTS case (shared/data/brats_case); every 10th is broken
# (t1c.nii.gz truncated), as in the foundation's bad-input tests.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${GLIOEDGE_BIN:-}
if [[ -z "$bin" ]]; then
    if [[ -x "$repo/target/release/glioedge" ]]; then bin="$repo/target/release/glioedge"
    else bin="$repo/target/debug/glioedge"; fi
fi
data=${GLIOEDGE_TEST_DATA:-$repo/../shared/data}
seed=${SOAK_SEED:-$data/brats_case}
n=${SOAK_CASES:-100}
kills=${SOAK_KILLS:-10}
[[ -x "$bin" ]] || { echo "soak: no binary at $bin (cargo build first)"; exit 2; }
[[ -d "$seed" ]] || { echo "soak: no seed case at $seed"; exit 2; }

work=$(mktemp -d /tmp/glioedge-soak.XXXXXX)
spool="$work/spool"
port=$(( 20000 + RANDOM % 30000 ))
cat > "$work/glioedge.toml" <<EOF
[spool]
root = "$spool"
quiet_seconds = 1.0
min_free_disk_mb = 1
[service]
rescan_seconds = 0.2
shutdown_grace_seconds = 5
# Kills here come every few seconds, from outside; the guard against a case that keeps
# crashing the box (default 3 interrupted attempts) is not what this soak measures.
max_attempts = 100
[web]
bind = "127.0.0.1:$port"
[inference]
# The real pipeline with the bundled demo model (a config outside the repo resolves relative
# model paths against its own folder, so name it absolutely).
model = "$repo/models/demo-convnext-tiny"
EOF

# Number of entries `find` lists (0 for a folder the service has not made yet).
count() { find "$@" 2>/dev/null | wc -l || true; }

pid=
start() {
    GLIOEDGE_LOG=info "$bin" serve --config "$work/glioedge.toml" >>"$work/serve.log" 2>&1 &
    pid=$!
    # Wait until it serves (model loaded, spool recovered) so every kill hits a running box.
    local t_end=$(( $(date +%s) + 300 ))
    until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
        (( $(date +%s) > t_end )) && { echo "soak: service did not come up; see $work/serve.log"; exit 1; }
        kill -0 "$pid" 2>/dev/null || { echo "soak: service exited at start; see $work/serve.log"; exit 1; }
        sleep 0.5
    done
}
cleanup() { [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true; }
trap cleanup EXIT

drop() { # drop <name> <bad?>
    local part="$spool/inbox/.$1.part"
    mkdir -p "$part"
    cp -l "$seed"/*.nii.gz "$part"/ 2>/dev/null || cp "$seed"/*.nii.gz "$part"/
    if [[ "$2" == bad ]]; then
        rm -f "$part/t1c.nii.gz"
        head -c 400000 "$seed/t1c.nii.gz" > "$part/t1c.nii.gz"
    fi
    mv "$part" "$spool/inbox/$1"
}

mkdir -p "$spool/inbox"
start
per_round=$(( (n + kills - 1) / kills ))
i=0; k=0; killed_mid_case=0
t0=$(date +%s)
while (( i < n )); do
    for (( j = 0; j < per_round && i < n; j++ )); do
        i=$((i + 1))
        name=$(printf 'soak-%03d' "$i")
        if (( i % 10 == 0 )); then drop "$name" bad; else drop "$name" good; fi
    done
    if (( k < kills )); then
        sleep "$(( 1 + RANDOM % 5 )).$(( RANDOM % 10 ))"
        in_work=$(count "$spool/work" -mindepth 1 -maxdepth 1)
        (( in_work > 0 )) && killed_mid_case=$((killed_mid_case + 1))
        kill -9 "$pid"; wait "$pid" 2>/dev/null || true
        k=$((k + 1))
        echo "soak: kill -9 #$k after $i cases dropped ($in_work case(s) in work/)"
        start
    fi
done

# Wait for the spool to drain.
deadline=$(( $(date +%s) + 60 * 60 ))
while :; do
    done_n=$(count "$spool/outbox" "$spool/failed" -mindepth 1 -maxdepth 1 ! -name '.*')
    busy=$(count "$spool/inbox" "$spool/work" -mindepth 1 -maxdepth 1)
    (( busy == 0 && done_n >= n )) && break
    (( $(date +%s) > deadline )) && { echo "soak: timed out ($done_n finished, $busy pending)"; break; }
    sleep 1
done
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
elapsed=$(( $(date +%s) - t0 ))

# Check: every case exactly once, in the right place.
fail=0; out_n=0; failed_n=0; missing=0; dup=0; wrong=0
for (( i = 1; i <= n; i++ )); do
    name=$(printf 'soak-%03d' "$i")
    copies=$(count "$spool/outbox" "$spool/failed" -mindepth 1 -maxdepth 1 \( -name "$name" -o -name "$name-*" \))
    if (( copies == 0 )); then missing=$((missing + 1)); fail=1; echo "soak: MISSING $name"; continue; fi
    if (( copies > 1 )); then dup=$((dup + 1)); fail=1; echo "soak: DUPLICATE $name"; fi
    if [[ -f "$spool/outbox/$name/spool.json" && -f "$spool/outbox/$name/result.json" ]]; then
        out_n=$((out_n + 1))
        if (( i % 10 == 0 )); then wrong=$((wrong + 1)); fail=1; echo "soak: bad case $name was published"; fi
    elif [[ -f "$spool/failed/$name/error.json" ]]; then
        failed_n=$((failed_n + 1))
        if (( i % 10 != 0 )); then
            wrong=$((wrong + 1)); fail=1
            echo "soak: good case $name failed: $(tr -d '\n' < "$spool/failed/$name/error.json")"
        fi
    else
        fail=1; echo "soak: $name incomplete"
    fi
done
leftover=$(count "$spool/inbox" "$spool/work" "$spool/tmp" -mindepth 1)
(( leftover > 0 )) && { fail=1; echo "soak: $leftover entries left in inbox/work/tmp"; }
extra=$(count "$spool/outbox" "$spool/failed" -mindepth 1 -maxdepth 1)
(( extra != out_n + failed_n )) && { fail=1; echo "soak: $extra folders in outbox+failed, expected $((out_n + failed_n))"; }

echo "soak: $n cases, $k kill -9 + restarts ($killed_mid_case with a case in work/), ${elapsed}s"
echo "soak: outbox $out_n, failed $failed_n (expected $(( n - n / 10 )) / $(( n / 10 ))), missing $missing, duplicated $dup, misplaced $wrong, leftovers $leftover"
if (( fail == 0 )); then
    echo "soak: OK — every case in outbox/ or failed/ exactly once"
    rm -rf "$work"
else
    echo "soak: FAILED — spool kept at $work"
    exit 1
fi
