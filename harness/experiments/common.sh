# common.sh: what every experiment script shares (sourced; POSIX sh).
#   Environment: MOEKIT (the CLI), MODEL (the model to study), CORPUS (heldout-LANG.txt),
#   OUT (where the report and PNGs go), SIZE (full, or smoke: a tiny run for the kit test).
set -eu
HERE=${HERE:-harness/experiments}
MOEKIT=${MOEKIT:-build/moekit}
MODEL=${MODEL:-data/model}
CORPUS=${CORPUS:-data/corpus}
SIZE=${SIZE:-full}
PYTHON=${PYTHON:-/usr/bin/python3}
case "$SIZE" in full | smoke) ;; *) echo "experiment: SIZE=$SIZE: must be full or smoke" >&2; exit 2 ;; esac
command -v gnuplot >/dev/null || { echo "experiment: gnuplot is missing: apt-get install -y gnuplot-nox" >&2; exit 1; }
mkdir -p "$OUT"
# The C model runs on one thread: tokens/s then compare across runs on a shared machine.
export OMP_NUM_THREADS=1

# num_experts of a model directory's config.json
num_experts() {
    sed -n 's/.*"num_experts"[^0-9]*\([0-9]*\).*/\1/p; s/.*"num_local_experts"[^0-9]*\([0-9]*\).*/\1/p' \
        "$1/config.json" | head -1
}

now() { date +%s.%N; }

# loadavg: the 1, 5 and 15 minute load averages (the machine is shared: timings are under load)
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# langs DIR: the languages of DIR/heldout-LANG.txt, space separated
langs() { for f in "$1"/heldout-*.txt; do l=$(basename "$f" .txt); printf '%s ' "${l#heldout-}"; done; }

# smoke_corpus SRC DST N: DST/heldout-LANG.txt = the first N fortunes of each SRC file
smoke_corpus() {
    mkdir -p "$2"
    for f in "$1"/heldout-*.txt; do
        awk -v n="$3" '/^%$/ { if (++c >= n) exit } { print }' "$f" >"$2/$(basename "$f")"
    done
}

# header TITLE: the report's first lines: title, date, machine load, how it was run
header() {
    echo "# $1"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`$RUN_COMMAND\` (SIZE=$SIZE), on a machine"
    echo "with $(getconf _NPROCESSORS_ONLN) CPU cores shared with other jobs: load average at the start $LOAD0"
    echo "(1, 5, 15 minutes), so the timings below are under load."
    echo
}

# cpu_seconds [FILE [FORMAT]]: user + system seconds of this script's finished children,
# as `times` wrote them to FILE ($OUT/times.txt). Call `times >FILE` in the script's own
# shell first: a subshell's children are not the script's.
cpu_seconds() {
    awk -v fmt="${2:-%.0f}" 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf fmt, u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "${1:-$OUT/times.txt}"
}

# train_runs OPTION PREFIX AT_ONCE VALUE...: train.py $RECIPE OPTION VALUE once per VALUE,
# into $OUT/PREFIXVALUE (its log $OUT/PREFIXVALUE.log), AT_ONCE runs at a time, each on one
# ATen thread at nice 10; the first that fails stops the experiment with its log's tail.
# Then it records the runs' CPU seconds ($OUT/times.txt) and their start, end and load
# averages ($OUT/run.txt), and reads t_start, t_end, LOAD0 and LOAD1 back from them. With
# REPORT_ONLY=1 nothing trains: the report is rewritten from the runs in OUT, their
# recorded figures kept. Needs t_start and LOAD0 set before.
train_runs() {
    opt=$1 prefix=$2 at_once=$3
    shift 3
    [ -z "${REPORT_ONLY:-}" ] || set --
    while [ $# -gt 0 ]; do
        pids= n=0
        while [ $# -gt 0 ] && [ "$n" -lt "$at_once" ]; do
            train_one "$opt" "$1" "$OUT/$prefix$1" & pids="$pids $!"
            n=$((n + 1))
            shift
        done
        for p in $pids; do wait "$p" || exit 1; done
    done
    if [ -z "${REPORT_ONLY:-}" ]; then
        times >"$OUT/times.txt"
        echo "$t_start $(now) $LOAD0 $(loadavg)" >"$OUT/run.txt"
    fi
    read -r t_start t_end l1 l5 l15 e1 e5 e15 <"$OUT/run.txt"
    LOAD0="$l1 $l5 $l15" LOAD1="$e1 $e5 $e15"
}

# train_one OPTION VALUE DIR: one training of train_runs
train_one() {
    # shellcheck disable=SC2086 # $RECIPE: words
    nice -n 10 "$PYTHON" harness/pytorch/train.py $RECIPE "$1" "$2" --out "$3" \
        --corpus-out "$3/corpus" >"$3.log" 2>&1 ||
        { echo "$(basename "$0" .sh): training $1 $2 failed:" >&2; tail -5 "$3.log" >&2; exit 1; }
}
