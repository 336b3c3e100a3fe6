#!/bin/sh
# run.sh - runs the libFuzzer harnesses `make fuzz` built (docs/fuzzing.md)
#
#   FUZZ_BUILD=build/fuzz FUZZ_SECONDS=30 [FUZZ=frame,time] [FUZZ_WORK=dir] tests/fuzz/run.sh
#
# Runs each $FUZZ_BUILD/bin/fuzz-NAME (those named in FUZZ, comma-separated,
# else all) one after the other for FUZZ_SECONDS, niced, on its work corpus
# $FUZZ_WORK/corpus/NAME (FUZZ_WORK is $FUZZ_BUILD unless given; the corpus
# is kept between runs: what a run finds, the next one starts from) and the
# seeds in tests/fuzz/corpus/NAME, with the dictionary tests/fuzz/NAME.dict
# when there is one. An input that crashes, leaks, takes more than 1 s
# (-timeout=1) or 2 GiB (-rss_limit_mb=2048) stops the harness and is saved
# as $FUZZ_WORK/artifacts/NAME-{crash,leak,timeout,oom}-*; the whole output
# is in $FUZZ_WORK/logs/NAME.log. Prints one line per harness:
#
#   fuzz NAME execs=N crashes=K edges=E
#
# (edges: the coverage counter libFuzzer reports as cov:) and exits 1 if
# any harness found something or failed to run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${FUZZ_BUILD:-build/fuzz}
seconds=${FUZZ_SECONDS:-30}
only=${FUZZ:-}
out=${FUZZ_WORK:-$build}
mkdir -p "$out/corpus" "$out/artifacts" "$out/logs"

# The sanitizers' own settings, whatever the caller's (a test runner's
# log_path would hide the reports from the log).
ASAN_OPTIONS=detect_leaks=1
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS UBSAN_OPTIONS

failed=0
found=0
for bin in "$build"/bin/fuzz-*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz-}
    if [ -n "$only" ]; then
        case ",$only," in *",$name,"*) ;; *) continue ;; esac
    fi
    found=$((found + 1))
    work="$out/corpus/$name"
    log="$out/logs/$name.log"
    mkdir -p "$work"
    set -- -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name-"
    [ -f "$here/$name.dict" ] && set -- "$@" -dict="$here/$name.dict"
    before=$(ls "$out/artifacts" | grep -c "^$name-")
    nice -n 19 "$bin" "$@" "$work" "$here/corpus/$name" >"$log" 2>&1
    rc=$?
    after=$(ls "$out/artifacts" | grep -c "^$name-")
    crashes=$((after - before))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    edges=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without an artifact: count it, the log says why
    fi
    echo "fuzz $name execs=${execs:-0} crashes=$crashes edges=${edges:-0}"
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  see $log and $out/artifacts/$name-*:"
        grep -E 'ERROR:|runtime error:|SUMMARY:|fuzz check failed|Test unit written' "$log" |
            head -n 8 | sed 's/^/  /'
    fi
done
if [ "$found" -eq 0 ]; then
    echo "run.sh: no harness in $build/bin${only:+ named $only}" >&2
    exit 1
fi
exit $failed
