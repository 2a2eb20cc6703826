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
