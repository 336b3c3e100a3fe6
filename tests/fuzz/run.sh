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
#
# libFuzzer's timeout is wall-clock time, and a niced process on a busy
# machine can wait more than a second for the CPU. So an input that timed
# out is replayed alone (three tries, not niced): if it then runs within
# the second it is moved to $FUZZ_WORK/artifacts/slow/, said so, and the
# harness goes on for the time left. A harness that outlives its time by a
# minute (libFuzzer's timeout handler can deadlock in malloc) is killed and
# goes on the same way.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${FUZZ_BUILD:-build/fuzz}
seconds=${FUZZ_SECONDS:-30}
only=${FUZZ:-}
out=${FUZZ_WORK:-$build}
mkdir -p "$out/corpus" "$out/artifacts/slow" "$out/logs"

# The sanitizers' own settings, whatever the caller's (a test runner's
# log_path would hide the reports from the log).
ASAN_OPTIONS=detect_leaks=1
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS UBSAN_OPTIONS

# artifacts NAME: how many inputs NAME has saved so far
artifacts() {
    ls "$out/artifacts" | grep -c "^$1-"
}

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
    part="$out/logs/$name.part"
    mkdir -p "$work"
    : >"$log"
    set -- -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$name-"
    [ -f "$here/$name.dict" ] && set -- "$@" -dict="$here/$name.dict"
    start=$(date +%s)
    execs=0
    edges=0
    crashes=0
    slow=0
    while :; do
        left=$((start + seconds - $(date +%s)))
        [ "$left" -gt 0 ] || break
        before=$(artifacts "$name")
        timeout -s KILL $((left + 60)) nice -n 19 "$bin" -max_total_time="$left" "$@" \
            "$work" "$here/corpus/$name" >"$part" 2>&1
        rc=$?
        cat "$part" >>"$log"
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$part" | tail -n 1)
        [ -n "$n" ] || n=$(grep -ao '^#[0-9]*' "$part" | tail -n 1 | tr -d '#') # killed
        e=$(grep -o 'cov: [0-9]*' "$part" | tail -n 1 | cut -d' ' -f2)
        execs=$((execs + ${n:-0}))
        [ "${e:-0}" -gt "$edges" ] && edges=$e
        [ "$rc" -eq 0 ] && break
        new=$(ls -t "$out/artifacts" | grep "^$name-" | head -n $(($(artifacts "$name") - before)))
        if [ -z "$new" ] && [ "$rc" -eq 137 ] && grep -q '^ALARM: working on the last Unit' "$part"; then
            slow=$((slow + 1)) # hung in the timeout handler: the input is lost
            echo "run.sh: $name hung in libFuzzer's timeout handler, killed" >>"$log"
            continue
        fi
        case "$new" in
        "$name"-timeout-*)
            if "$bin" -timeout=1 -runs=3 -artifact_prefix="$out/artifacts/slow/replay-" \
                "$out/artifacts/$new" >>"$log" 2>&1; then
                mv "$out/artifacts/$new" "$out/artifacts/slow/"
                slow=$((slow + 1))
                echo "run.sh: $new runs within 1 s alone: slow under load only" >>"$log"
                continue
            fi
            ;;
        esac
        crashes=$((crashes + 1)) # a crash, leak, oom, timeout, or died without an artifact
        break
    done
    rm -f "$part"
    echo "fuzz $name execs=$execs crashes=$crashes edges=$edges"
    if [ "$slow" -ne 0 ]; then
        echo "  $slow timeout(s) only under load (replayed within 1 s, or hung in libFuzzer's" \
            "handler): $out/artifacts/slow/"
    fi
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  see $log and $out/artifacts/$name-*:"
        grep -aE 'ERROR:|runtime error:|SUMMARY:|fuzz check failed|Test unit written' "$log" |
            head -n 8 | sed 's/^/  /'
    fi
done
if [ "$found" -eq 0 ]; then
    echo "run.sh: no harness in $build/bin${only:+ named $only}" >&2
    exit 1
fi
exit $failed
