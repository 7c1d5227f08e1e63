#!/usr/bin/env bash
# Time-boxed fuzzing of every parser of outside bytes (fuzz/README.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]    # default 20; e.g. 3600 for a long run
#   FUZZ_TARGETS="manifest lock_file" scripts/fuzz.sh 60   # a subset
#
# Builds all targets once (`cargo fuzz build --dev`, AddressSanitizer) on the
# stable toolchain with RUSTC_BOOTSTRAP=1, so CI and developers build the same
# way without a nightly; replays the committed reproducers in
# fuzz/regressions/<target>/; then fuzzes each target for SECONDS_PER_TARGET
# on fuzz/corpus/<target> (generated, gitignored) plus fuzz/seeds/<target>.
# Exits non-zero if any regression or target crashes, times out or runs out
# of memory, printing the artifact file.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;; esac

toolchain=${FUZZ_TOOLCHAIN:-stable}
cargo=(cargo)
command -v rustup >/dev/null && cargo=(cargo "+$toolchain")
# cargo-fuzz needs -Z flags (sanitizer, coverage); the stable toolchain ships the
# sanitizer runtimes (librustc-stable_rt.asan.a) and takes them with this.
export RUSTC_BOOTSTRAP=1
# Not clippy-driver (.cargo/config.toml): the fuzz targets are not under the
# workspace's lints, and the sanitizer build is its own artifact anyway.
export RUSTC_WORKSPACE_WRAPPER=
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

# Targets and their -max_len: OTLP requests up to 64 KiB, text and JSON smaller.
declare -A max_len=(
    [otlp_validate]=65536
    [otlp_to_otap]=65536
    [sdk_redact]=65536
    [manifest]=16384
    [plugin_config]=4096
    [registry_reference]=1024
    [lock_file]=8192
    [oci_manifest]=8192
    [signature_payload]=4096
)
all="otlp_validate otlp_to_otap sdk_redact manifest plugin_config registry_reference lock_file oci_manifest signature_payload"
targets=${FUZZ_TARGETS:-$all}

stage() { printf '\n== %s (%ss elapsed)\n' "$1" "$SECONDS"; }

if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
    stage "install cargo-fuzz"
    "${cargo[@]}" install cargo-fuzz --version 0.13.2 --locked
fi

stage "build fuzz targets (${cargo[*]} fuzz build --dev --features otap)"
"${cargo[@]}" fuzz build --dev --features otap
triple=$(rustc "+$toolchain" -vV 2>/dev/null | sed -n 's/^host: //p' || rustc -vV | sed -n 's/^host: //p')
bin_dir=fuzz/target/$triple/debug

# The OTLP corpora start from the repository's sample data (examples/data),
# converted to protobuf by the target binary itself (see fuzz/src/lib.rs).
for t in otlp_validate otlp_to_otap sdk_redact; do
    mkdir -p "fuzz/corpus/$t"
    WASMTEL_FUZZ_WRITE_SEEDS="fuzz/corpus/$t" "$bin_dir/otlp_validate" >/dev/null 2>&1
done

failed=()
flags=(-rss_limit_mb=2048 -timeout=10)

stage "replay fuzz/regressions"
for t in $targets; do
    dir=fuzz/regressions/$t
    [ -d "$dir" ] || continue
    for file in "$dir"/*; do
        [ -f "$file" ] || continue
        if "$bin_dir/$t" "${flags[@]}" "$file" >"fuzz/replay.log" 2>&1; then
            echo "ok      $t $file"
        else
            echo "CRASH   $t $file"
            grep -m1 -A4 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" fuzz/replay.log | sed 's/^/        /'
            failed+=("$t: regression $file")
        fi
    done
done
rm -f fuzz/replay.log

for t in $targets; do
    stage "fuzz $t for ${seconds}s (-max_len=${max_len[$t]})"
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    log=fuzz/artifacts/$t.log
    mkdir -p "$corpus" "$artifacts"
    seeds=()
    [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
    dict=()
    [ -f "fuzz/dicts/$t.dict" ] && dict=("-dict=fuzz/dicts/$t.dict")
    status=0
    "$bin_dir/$t" "$corpus" "${seeds[@]}" "${flags[@]}" "${dict[@]}" \
        -max_total_time="$seconds" -max_len="${max_len[$t]}" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" | tr '\n' ' '
    echo
    if [ "$status" -ne 0 ]; then
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        echo "FAILED: $t exited $status; artifact: ${artifact:-none}"
        grep -m1 -B2 -A12 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || tail -20 "$log"
        echo "reproduce: $bin_dir/$t ${artifact:-<artifact>}    (log: $log)"
        failed+=("$t: ${artifact:-exit $status}")
    fi
done

stage "done"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'fuzz failures:\n'
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
echo "no crashes in: $targets"
