#!/bin/sh
# grade.sh: grades one submission, lesson by lesson (`make grade SUBMISSION=...`).
#
# Each lesson is built on its own: the student's file(s) for that lesson, the solutions
# for every other lesson, and the test runner. So a lesson that does not compile, crashes
# or loops costs its own points only, and a later lesson is not marked down for an earlier
# one. Each is built twice, with the flags `make check` uses for that file (`make grade-flags`):
# plainly, for the tests' points, and with ASan + UBSan, for the "memory" and "leaks" items.
# A case that AddressSanitizer or UBSan stopped never reached the leak check, so when there
# is one the lesson is built a third time with LeakSanitizer alone and run again, for the
# "leaks" item only. Every test runs in its own process under a time limit (TIMEOUT seconds),
# and each lesson's run under a wall-clock limit.
# Lesson 12 (expert parallelism) also links the student's file into check-mpi (mk/mpi.mk),
# whose four ranks the runner starts under mpirun inside the test's sandbox, before the
# filter (docs/instructors.md, "Lesson 12: the ranks"); it has no sanitizer build (it has
# no memory or leaks rows: points.tsv says why), and a machine without MPI skips it.
#
# The student's code is never trusted (docs/instructors.md, "The threat model"):
#   - it is compiled and run in a bubblewrap sandbox, as an unprivileged user (nobody, when
#     the grader is root), in new PID, mount, network, IPC and UTS namespaces, with a
#     private /tmp of 64 MiB, no network, and limits on CPU time, memory, file size and
#     processes; the sandbox sees /usr read-only and a staging copy of only what it needs:
#     the submission and harness/include/ to compile; the test runner and one test's
#     fixture, stripped of its expected values, to run. Not the kit, not solutions/, not
#     the fixtures, not other students' work, not the records. When its command ends,
#     every process in it is killed with it.
#   - it never gives its own verdict: in the sandbox the runner records what the
#     student's functions produced on a tape (check --record-fd); the judge, built from the
#     solutions and run here, reads it back and compares (check --judge; check.h, "run
#     first, judge after");
#   - it may #include only its own files, harness/include/ and system headers (the
#     compiler's -MD list says what it did);
#   - an archive is unpacked only when every member is a plain file or directory inside
#     it, and under a size and a file-count limit.
# UNSAFE=1 grades without the sandbox (the judge stays): for a machine where bubblewrap
# cannot run, and only for code you trust.
#
# Writes RESULTS/results.json (Gradescope), RESULTS/table.txt (the table it prints) and
# RESULTS/grade.csv (a header and the student's row); RESULTS is build/grade/<student>.
# Exit status 0 whatever the student's score; 2 when the grader itself cannot run.
#
# Environment (the make variables of mk/grade.mk): SUBMISSION, FIXTURES, TIMEOUT, POINTS,
# LESSONS, JOBS, VISIBILITY, MAX_TIMEOUTS, PROPERTY_SEED, STUDENT, RESULTS, MAKE, CC; QUIET=1 prints
# nothing but problems; ARCHIVE_MAX_MB (64) and ARCHIVE_MAX_FILES (2000) limit what an
# archive may unpack to; UNSAFE=1 (above); SANDBOX_MEMORY_MB (1024) the memory a test may
# use (2048).
set -u
MAKE=${MAKE:-make}
CC=${CC:-cc}
SUBMISSION=${SUBMISSION:-}
FIXTURES=${FIXTURES:-data/fixtures}
TIMEOUT=${TIMEOUT:-10}
POINTS=${POINTS:-harness/grade/points.tsv}
LESSONS=${LESSONS:-}
JOBS=${JOBS:-2}
VISIBILITY=${VISIBILITY:-visible}
MAX_TIMEOUTS=${MAX_TIMEOUTS:-3}
# the property checks' random inputs (check.h): drawn afresh for each grading, the same
# for the sandbox and the judge, so that a submission cannot be fitted to them
PROPERTY_SEED=${PROPERTY_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d " ")}
STUDENT=${STUDENT:-}
RESULTS=${RESULTS:-}
QUIET=${QUIET:-}
ARCHIVE_MAX_MB=${ARCHIVE_MAX_MB:-64}
ARCHIVE_MAX_FILES=${ARCHIVE_MAX_FILES:-2000}
UNSAFE=${UNSAFE:-}
SANDBOX_MEMORY_MB=${SANDBOX_MEMORY_MB:-2048}

fail() {
    echo "make grade: $*" >&2
    exit 2
}

[ -n "$SUBMISSION" ] || fail "name what to grade: make grade SUBMISSION=dir (a copy of a student's lessons/) or SUBMISSION=file.tar.gz"
[ -e "$SUBMISSION" ] || fail "$SUBMISSION does not exist"
[ -d solutions ] || fail "grading builds each lesson against solutions/, and there is none here"
[ -f "$POINTS" ] || fail "no points table at $POINTS"
[ -d "$FIXTURES" ] || fail "no fixtures directory $FIXTURES"
case $TIMEOUT in '' | *[!0-9]*) fail "TIMEOUT must be a number of seconds, not '$TIMEOUT'" ;; esac
case $JOBS in '' | *[!0-9]* | 0) JOBS=1 ;; esac
case $ARCHIVE_MAX_MB$ARCHIVE_MAX_FILES$SANDBOX_MEMORY_MB in *[!0-9]*) fail "ARCHIVE_MAX_MB, ARCHIVE_MAX_FILES and SANDBOX_MEMORY_MB must be numbers" ;; esac
case $UNSAFE in '' | 0) UNSAFE= ;; *) UNSAFE=1 ;; esac

# ---- the sandbox ------------------------------------------------------------------------------
# Who the student's code runs as. A grader that is root (Gradescope's is) runs bubblewrap
# as root, which makes the namespaces itself, and setpriv, inside, makes the command
# nobody, without capabilities or a way back (no_new_privs): no user namespace needed,
# which a chroot forbids. Any other user is unprivileged already: bubblewrap makes the
# sandbox in a user namespace of that user.
if [ "$(id -u)" = 0 ]; then
    as_root=1
    namespaces="--unshare-pid --unshare-net --unshare-ipc --unshare-uts --unshare-cgroup-try"
    drop="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs"
else
    as_root=
    namespaces="--unshare-all --unshare-user --disable-userns --cap-drop ALL"
    drop=
fi
# /bin, /lib ... as the host has them: links into /usr (merged /usr), or read-only binds
usr_links=
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -L /$d ]; then
        usr_links="$usr_links --symlink $(readlink /$d) /$d"
    elif [ -d /$d ]; then
        usr_links="$usr_links --ro-bind /$d /$d"
    fi
done
# sandbox LIMITS BIND... -- COMMAND...: COMMAND in the sandbox, seeing /usr and the BINDs
# (bwrap's --ro-bind SRC DEST / --bind SRC DEST, --chdir DIR). LIMITS: run (CPU, memory,
# processes for the student's code) or cc (the compiler's); both: no core files, files up
# to 64 MiB. Descriptors 0-3 pass through (3: the tape); $sanitized: an ASan build;
# $wall: a wall-clock limit in seconds, after which everything in it is killed.
stage_dirs= # set with the staging area, below
sandbox() {
    kind=$1
    shift
    if [ "$kind" = run ]; then
        # CPU seconds and address space per process; processes of the sandbox's user. An
        # ASan build needs its address space: the sanitizer's own RSS limit stands in.
        limits="--cpu=$((TIMEOUT * 20 + 10)) --nproc=64"
        [ -z "$sanitized" ] && limits="$limits --as=$((SANDBOX_MEMORY_MB * 1048576))"
    else
        limits="--cpu=120"
    fi
    (
        exec 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
        if [ -n "$UNSAFE" ]; then
            while [ "$1" != -- ]; do shift; done
            shift
            # shellcheck disable=SC2086 # the options are words
            exec prlimit --core=0 --fsize=67108864 $limits -- ${wall:+timeout -k 5 "$wall"} "$@"
        fi
        # the command after "--" runs as nobody: setpriv goes in front of it (root only)
        n=$# seen=
        for a; do
            set -- "$@" "$a"
            # shellcheck disable=SC2086 # $drop: words
            [ "$a" = -- ] && [ -z "$seen" ] && seen=1 && set -- "$@" $drop
        done
        shift "$n"
        # shellcheck disable=SC2086 # the options are words
        exec prlimit --core=0 --fsize=67108864 $limits -- ${wall:+timeout -k 5 "$wall"} \
            bwrap $namespaces --die-with-parent --new-session \
            --ro-bind /usr /usr $usr_links --perms 0755 --dir /etc \
            --ro-bind-try /etc/alternatives /etc/alternatives --ro-bind-try /etc/ld.so.cache /etc/ld.so.cache \
            --proc /proc --dev /dev --perms 1777 --size 1048576 --tmpfs /dev/shm \
            --perms 1777 --size 67108864 --tmpfs /tmp --perms 0777 --dir /tmp/home \
            $stage_dirs \
            --clearenv --setenv PATH /usr/bin:/bin --setenv HOME /tmp/home --setenv LC_ALL C \
            "$@"
    )
}
if [ -z "$UNSAFE" ]; then
    command -v bwrap >/dev/null 2>&1 ||
        fail "the student's code runs in a bubblewrap sandbox, and bwrap is not installed: sudo apt-get install bubblewrap (or UNSAFE=1 to grade without a sandbox: only for code you trust; docs/instructors.md)"
    [ -z "$as_root" ] || command -v setpriv >/dev/null 2>&1 ||
        fail "grading as root needs setpriv (util-linux) to run the student's code as nobody"
    why=$(sanitized='' wall='' sandbox cc --chdir /tmp -- /usr/bin/env true 2>&1 </dev/null) ||
        fail "bwrap cannot make a sandbox here ($(echo "$why" | head -1)); as root it needs to make mount and PID namespaces (a container without CAP_SYS_ADMIN cannot), as another user also a user namespace (sysctl kernel.unprivileged_userns_clone=1; not in a chroot); UNSAFE=1 grades without it, only for code you trust (docs/instructors.md)"
fi

# the student's name: STUDENT, or the submission's name without its extension
if [ -z "$STUDENT" ]; then
    STUDENT=$(basename "$SUBMISSION")
    for ext in .tar.gz .tgz .tar.xz .tar.bz2 .tar .zip; do STUDENT=${STUDENT%"$ext"}; done
fi
slug=$(printf '%s' "$STUDENT" | tr -c 'A-Za-z0-9._@+-' '_')
[ -n "$slug" ] || slug=student
W=build/grade/$slug
RESULTS=${RESULTS:-$W}
rm -rf "$W" && mkdir -p "$W/log" "$W/rec" "$RESULTS" || fail "cannot write $W"
start=$(date +%s)

# ---- the submission: a directory as it is, or an archive unpacked --------------------------
# unpack ARCHIVE DIR: unpacks ARCHIVE into DIR with tar or unzip, or says in one line why
# not (status 1). Refused: a member with an absolute path, a ".." or a backslash in its
# name, anything but plain files and directories (symlinks, hard links, devices), more than
# ARCHIVE_MAX_FILES members, more than ARCHIVE_MAX_MB MiB unpacked (a zip bomb: a tar is
# decompressed through `head -c`, a zip is listed first and unpacked under `ulimit -f`, and
# what was unpacked is measured again).
unpack() {
    a=$1 d=$2 cap=$((ARCHIVE_MAX_MB * 1048576)) names=$W/log/archive-names.txt types=$W/log/archive-types.txt
    case $a in
    *.zip)
        unzip -Z1 "$a" >"$names" 2>/dev/null && unzip -Z "$a" 2>/dev/null | sed '1,2d;$d' >"$types" ||
            { echo "unzip cannot read it as a zip archive"; return 1; }
        size=$(unzip -Zt "$a" 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "bytes") { print $i; exit } }')
        [ "${size:-0}" -le "$cap" ] 2>/dev/null || { echo "it unpacks to more than $ARCHIVE_MAX_MB MiB"; return 1; }
        ;;
    *.tar.gz | *.tgz | *.tar.xz | *.tar.bz2 | *.tar)
        case $a in
        *.tar.gz | *.tgz) dec="gzip -dc" ;; *.tar.xz) dec="xz -dc" ;; *.tar.bz2) dec="bzip2 -dc" ;; *) dec="cat" ;;
        esac
        $dec <"$a" 2>/dev/null | head -c $((cap + 1)) >"$W/archive.tar"
        [ "$(wc -c <"$W/archive.tar")" -le "$cap" ] || { echo "it unpacks to more than $ARCHIVE_MAX_MB MiB"; return 1; }
        tar -tf "$W/archive.tar" >"$names" 2>/dev/null && tar -tvf "$W/archive.tar" >"$types" 2>/dev/null ||
            { echo "tar cannot read it (${dec% -dc} compressed tar expected)"; return 1; }
        ;;
    *) echo "not an archive this grader knows (.tar.gz, .tgz, .tar.xz, .tar.bz2, .tar, .zip)"; return 1 ;;
    esac
    bad=$(grep -m1 -E '^/|(^|/)\.\.(/|$)|\\' "$names") &&
        { echo "member '$bad' would land outside the submission (absolute path, .. or \\)"; return 1; }
    bad=$(grep -m1 -v '^[-d]' "$types") &&
        { echo "it holds something else than files and directories (a symlink, a hard link?): $(echo "$bad" | cut -c1-80)"; return 1; }
    [ "$(wc -l <"$names")" -le "$ARCHIVE_MAX_FILES" ] ||
        { echo "it holds more than $ARCHIVE_MAX_FILES files"; return 1; }
    case $a in
    *.zip) ( ulimit -f $((cap / 512)) 2>/dev/null; unzip -qq -o "$a" -d "$d" ) ;;
    *) tar -xf "$W/archive.tar" -C "$d" --no-same-owner ;;
    esac >"$W/log/unpack.txt" 2>&1 || { echo "it could not be unpacked: $(head -1 "$W/log/unpack.txt")"; return 1; }
    rm -f "$W/archive.tar"
    [ "$(du -sk "$d" | cut -f1)" -le $((cap / 1024 + 64)) ] && [ "$(find "$d" | wc -l)" -le $((ARCHIVE_MAX_FILES + 1)) ] ||
        { rm -rf "$d" && mkdir -p "$d"; echo "it unpacks to more than $ARCHIVE_MAX_MB MiB or $ARCHIVE_MAX_FILES files"; return 1; }
    [ -z "$(find "$d" ! -type f ! -type d | head -1)" ] ||
        { rm -rf "$d" && mkdir -p "$d"; echo "it unpacked to something else than files and directories"; return 1; }
}
unpack_note=
archive=
if [ -d "$SUBMISSION" ]; then
    SUB=$SUBMISSION
    # a directory that holds one archive and no .c file (Gradescope's upload of a tarball)
    if [ -z "$(find "$SUB" -name '*.c' | head -1)" ]; then
        set -- "$SUB"/*.tar.gz "$SUB"/*.tgz "$SUB"/*.tar.xz "$SUB"/*.tar.bz2 "$SUB"/*.tar "$SUB"/*.zip
        for a; do [ -f "$a" ] && archive="$archive${archive:+
}$a"; done
        [ "$(printf '%s' "$archive" | grep -c .)" -le 1 ] || archive=$(printf '%s\n' "$archive" | head -1)
    fi
else
    archive=$SUBMISSION
fi
if [ -n "$archive" ]; then
    SUB=$W/submission
    mkdir -p "$SUB"
    if ! why=$(unpack "$archive" "$SUB"); then
        why=$(printf '%s' "$why" | tr -d '\000-\037\177') # member names are the student's bytes
        unpack_note=" ($(basename "$archive") was not unpacked: $why)"
        echo "make grade: $archive: not unpacked: $why" >&2
    fi
fi

# ---- the staging area: all the sandbox may see, readable by its user ----------------------------
# (the kit may lie where that user cannot reach it: /root, a home directory)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/moekit-grade.XXXXXX") || fail "cannot make a staging directory in ${TMPDIR:-/tmp}"
trap 'rm -rf "$STAGE"' EXIT
trap 'exit 2' INT TERM HUP
mkdir -p "$STAGE/sub" "$STAGE/kit/harness" "$STAGE/fx" "$STAGE/obj" "$STAGE/run" &&
    cp -R "$SUB/." "$STAGE/sub/" && cp -R harness/include "$STAGE/kit/harness/" &&
    chmod -R a+rX,go-w "$STAGE" || fail "cannot copy the submission to $STAGE"
ORIG_SUB=$SUB
SUB=$STAGE/sub
# the staging area's directories, as the sandbox makes them to hold its binds: readable by
# its user (bwrap, run as root, would make them root's alone)
d=$STAGE
while [ "$d" != / ] && [ "$d" != /tmp ]; do
    stage_dirs="--perms 0755 --dir $d $stage_dirs"
    d=$(dirname "$d")
done
for d in obj run fx; do stage_dirs="$stage_dirs --perms 0755 --dir $STAGE/$d"; done
# writable DIR...: directories the sandbox's user may write (its own, when it is nobody)
writable() {
    mkdir -p "$@" && if [ -n "$as_root" ]; then chown 65534:65534 "$@"; fi
}

# regex: a path as a sed pattern; unroot FILE...: the submission's and the kit's paths taken
# out of compiler messages and sanitizer reports, so that they read 02-rmsnorm/rmsnorm.c:25
# (the instructor's directories are none of the student's business)
regex() { printf '%s' "$1" | sed 's|/*$||; s/[][\.*^$|/]/\\&/g'; }
SUB_REAL=$(cd "$SUB" && pwd -P) || fail "cannot enter $SUB"
KIT=$(pwd -P)
unroot_sed="s|$(regex "$SUB_REAL")/||g; s|$(regex "$SUB")/||g; s|$(regex "$ORIG_SUB")/||g; s|$(regex "$STAGE")/||g; s|$(regex "$KIT")/||g"
unroot() {
    for f; do [ -f "$f" ] && sed "$unroot_sed" "$f" >"$f.tmp" && mv "$f.tmp" "$f"; done
}

# ---- the kit: runner, harness and solutions, plain and with the sanitizers ------------------
for san in "" 1; do
    flavor=${san:+san}
    flavor=${flavor:-normal}
    # one make: build what is missing, then print the variables (the only output on stdout)
    $MAKE -s --no-print-directory CC="$CC" SRC=solutions SANITIZE=$san check-build grade-tools \
        grade-vars >"$W/vars.$flavor" 2>"$W/log/kit-$flavor.txt" && grep -q '^G_REPORT=' "$W/vars.$flavor" ||
        fail "the kit does not build ($flavor): see $W/log/kit-$flavor.txt"
    # how make check compiles each lesson file in this flavour
    $MAKE -s --no-print-directory CC="$CC" SRC=solutions SANITIZE=$san grade-flags >"$W/flags.$flavor" \
        2>>"$W/log/kit-$flavor.txt" && [ -s "$W/flags.$flavor" ] ||
        fail "make grade-flags printed nothing ($flavor): see $W/log/kit-$flavor.txt"
done
. "$W/vars.normal"
JUDGE=$G_CHECK # the runner built from the solutions: it reads the tapes and gives verdicts
# the compiler's own header directories: the system headers a submission may include
# shellcheck disable=SC2046 # the flags are words
$CC $(cut -f2 "$W/flags.normal" | head -1) -E -v -x c /dev/null 2>&1 >/dev/null |
    sed -n '/#include <...> search starts here:/,/End of search list/p' | sed '1d;$d;s/^ *//' |
    while read -r dir; do realpath -- "$dir" 2>/dev/null; done >"$W/sysdirs"
[ -s "$W/sysdirs" ] || fail "$CC -E -v names no system include directory"
# clang's own files outside its include directory (with -fsanitize=address, -MD lists its
# share/asan_ignorelist.txt): the compiler's, as its headers are. gcc has no such option.
resource=$($CC -print-resource-dir 2>/dev/null) && [ -d "$resource" ] && realpath -- "$resource" >>"$W/sysdirs"
# MPI's headers (mpicc's -I directories, for lesson 12): system headers too
for f in $G_MPI_CFLAGS; do
    case $f in -I?*) realpath -- "${f#-I}" 2>/dev/null ;; esac
done >>"$W/sysdirs"
REPORT=$G_REPORT
"$REPORT" --points "$POINTS" --check >/dev/null || exit 2

# the system calls a test's process may not make (harness/grade/seccomp_filter.c)
"$G_SECCOMP" "$STAGE/filter.bpf" && chmod a+r "$STAGE/filter.bpf" || fail "cannot write the system-call filter"

# every case there is: what a lesson that does not build or stops early is missing
"$G_CHECK" --fixtures "$FIXTURES" --cases --results "$W/rec/expect.tsv" --tag expect >/dev/null 2>&1
if [ ! -s "$W/rec/expect.tsv" ] || grep -q '	ERROR	' "$W/rec/expect.tsv"; then
    fail "cannot read the fixtures in $FIXTURES: $(grep '	ERROR	' "$W/rec/expect.tsv" 2>/dev/null | cut -f6 | head -1)"
fi

# ---- which lessons: those with rows in the points table (LESSONS= narrows them) -------------
# lesson 12 runs its ranks under mpirun (mk/mpi.mk): a grading machine without Open MPI
# leaves it out, points and maximum both, and says so
MPI_LESSON=12
MPI_INSTALL="sudo apt-get install -y openmpi-bin libopenmpi-dev"
mpi_missing='' mpi_note=''
[ -n "$G_MPICC" ] && command -v mpirun >/dev/null 2>&1 || mpi_missing=1
want=
for l in $LESSONS; do want="$want $(printf '%02d' "$(echo "$l" | sed 's/^0*\([0-9]\)/\1/; s/[^0-9].*//')")"; done
ids=
for id in $(awk '$1 ~ /^[0-9][0-9]$/ && NF >= 3 { print $1 }' "$POINTS" | sort -u); do
    if [ -n "$want" ]; then
        case " $want " in *" $id "*) ;; *) continue ;; esac
    fi
    set -- solutions/"$id"-*/
    [ -d "$1" ] || fail "$POINTS gives points to lesson $id, but there is no solutions/$id-*"
    if [ "$id" = "$MPI_LESSON" ] && [ -n "$mpi_missing" ]; then
        echo "make grade: lesson $id is skipped, not graded (its points count neither for nor against): it needs MPI (mpicc and mpirun) on the grading machine: $MPI_INSTALL" >&2
        mpi_note="; lesson $id skipped: the grading machine has no MPI ($MPI_INSTALL)"
        continue
    fi
    ids="$ids $id"
done
[ -n "$ids" ] || fail "no lesson to grade (LESSONS='$LESSONS', points in $POINTS)"
for d in solutions/[0-9][0-9]-*/; do
    id=$(basename "$d" | cut -c1-2)
    grep -q "^${id}[ 	]" "$POINTS" || echo "make grade: lesson $(basename "$d") has no rows in $POINTS, so it is not graded" >&2
done

# each test's fixture without the values it expects: all the sandbox gets
for id in $ids; do
    "$JUDGE" --strip "$STAGE/fx" --fixtures "$FIXTURES" --lesson "$id" >>"$W/log/strip.txt" 2>&1 ||
        fail "cannot strip the fixtures of lesson $id in $FIXTURES for the sandbox: $(head -3 "$W/log/strip.txt")"
done
chmod -R a+rX "$STAGE/fx"

# escape: stdin as one record field (\ -> \\, tab -> \t, newline -> \n), at most 60 lines
escape() {
    head -60 | awk '{ gsub(/\\/, "\\\\"); gsub(/\t/, "\\t"); printf "%s\\n", $0 }'
}

# locate LESSONDIR FILE: the student's copy of FILE, preferring LESSONDIR/FILE, then the
# shortest path, and a copy outside a solutions/ directory
locate() {
    for pattern in "*/$1/$2" "*/$2"; do
        found=$(find "$SUB" -type f -path "$pattern" 2>/dev/null | grep -v '/solutions/' |
            awk '{ print length($0) "\t" $0 }' | sort -n | head -1 | cut -f2-)
        [ -n "$found" ] && { echo "$found"; return; }
    done
}

# the wall-clock limit of one sandbox: every case of the lesson at its limit, and 10 s more
wall_limit() {
    n=$(awk -F'\t' -v id="$1" '$2 == id' "$W/rec/expect.tsv" | wc -l)
    echo $((n * TIMEOUT + 10))
}

# deps FILE: the files a compiler's -MD output names, one a line ("\ " is a space in a name)
deps() {
    awk '{ t = t $0 "\n" } END {
        gsub(/\\\n/, " ", t); sub(/^[^:]*:/, "", t); name = ""
        for (i = 1; i <= length(t); i++) {
            c = substr(t, i, 1)
            if (c == "\\" && substr(t, i + 1, 1) == " ") { name = name " "; i++ }
            else if (c == "$" && substr(t, i + 1, 1) == "$") { name = name "$"; i++ }
            else if (c == " " || c == "\t" || c == "\n") { if (name != "") print name; name = "" }
            else name = name c
        }
        if (name != "") print name }' "$1"
}
# foreign DEPFILE: the first file the submission included that it may not (besides its own
# files, the kit's public headers in harness/include/ and the compiler's system headers)
foreign() {
    deps "$1" | tr '\n' '\0' | xargs -0 realpath -m -- | awk -v kit="$STAGE/kit/" -v roots="$SUB_REAL/
$STAGE/kit/harness/include/
$(sed 's|/*$|/|' "$W/sysdirs")" '
        BEGIN { n = split(roots, root, "\n") }
        { for (i = 1; i <= n; i++) if (root[i] != "/" && index($0, root[i]) == 1) next
          if (index($0, kit) == 1) $0 = substr($0, length(kit) + 1)
          print; exit }'
}

# tests_of ID: how many tests lesson ID has (the runner's --list)
tests_of() {
    "$JUDGE" --list | awk -v id="$1" '/^[0-9]/ { on = substr($0, 1, 2) == id; next } on { n++ } END { print n + 0 }'
}

# compile_in_sandbox SRC OUT CFLAGS: the student's SRC compiled to OUT.o (and OUT.d, -MD)
# in the sandbox, which sees the staged submission and harness/include/ only
compile_in_sandbox() {
    src=$1 out=$2 cflags=$3
    sobj=$STAGE/obj/$(basename "$(dirname "$out")").$flavor
    writable "$sobj"
    # shellcheck disable=SC2086 # the flags are words
    sandbox cc --ro-bind "$STAGE/sub" "$STAGE/sub" --ro-bind "$STAGE/kit" "$STAGE/kit" \
        --bind "$sobj" "$sobj" --chdir "$STAGE/kit" -- \
        $G_CC $cflags -I"$(dirname "$src")" -MD -MF "$sobj/x.d" -c "$src" -o "$sobj/x.o" </dev/null &&
        cp "$sobj/x.o" "$out.o" && cp "$sobj/x.d" "$out.d"
}

# run_in_sandbox ID FLAVOR ENV...: runs lesson ID's tests, one sandbox per test (each sees
# only its own stripped fixture), recording on $W/rec/ID.FLAVOR.tape; the exit status of
# the last one that did not end normally (124/137: the wall-clock limit)
run_in_sandbox() {
    id=$1 flavor=$2
    shift 2
    srun=$STAGE/run/$id.$flavor tape=$W/rec/$id.$flavor.tape rc=0 k=0 n=$(tests_of "$id")
    # the filter on the plain build (the sanitizers' runtimes fork and trace)
    filter=
    [ "$flavor" = normal ] && filter="--seccomp $STAGE/filter.bpf"
    mkdir -p "$srun" && cp "$obj/check" "$srun/check" && chmod 755 "$srun" "$srun/check" || return 2
    # lesson 12's ranks (the runner starts them under mpirun, in the sandbox)
    if [ -f "$obj/check-mpi" ]; then cp "$obj/check-mpi" "$srun/check-mpi" && chmod 755 "$srun/check-mpi" || return 2; fi
    : >"$tape"
    while [ "$k" -lt "$n" ]; do
        # after MAX_TIMEOUTS timeouts the judge records the rest as not run
        [ "$(grep -a -c '^\(E TIMEOUT	\|X \)' "$tape")" -lt "$MAX_TIMEOUTS" ] || break
        fx=$(ls "$STAGE/fx/$id"-*.t$k.safetensors 2>/dev/null | head -1)
        [ -n "$fx" ] || return 2
        t0=$(date +%s)
        echo S >>"$tape" # a new sandbox (tape.h): a section a killed runner left open stays so
        # shellcheck disable=SC2086 # $filter: words
        wall=$limit sandbox run --ro-bind "$srun" "$srun" --ro-bind "$fx" "$fx" \
            --ro-bind "$STAGE/filter.bpf" "$STAGE/filter.bpf" --chdir /tmp -- \
            /usr/bin/env "$@" "$srun/check" --fixtures "$STAGE/fx" --lesson "$id" --test "$k" \
            --record-fd 3 --seed "$PROPERTY_SEED" --timeout "$TIMEOUT" --max-timeouts "$MAX_TIMEOUTS" \
            $filter 3>>"$tape" </dev/null
        r=$?
        [ "$r" -eq 0 ] || rc=$r
        if [ "$r" -ne 0 ] && [ $(($(date +%s) - t0)) -ge "$limit" ]; then
            # the wall-clock limit stopped it: the case it was in timed out (the judge
            # records the rest as not run)
            printf 'X timed out: the sandbox was stopped at the wall-clock limit (%s s)\n' \
                "$limit" >>"$tape"
            return 124
        fi
        k=$((k + 1))
    done
    return "$rc"
}

# grade_one ID FLAVOR: builds lesson ID with make check's flags (normal: plain; san: ASan +
# UBSan; leak: LeakSanitizer alone), runs its tests in the sandbox and has the judge read
# what they recorded; its records go to $W/rec/ID.FLAVOR.head (lesson, build, run) and .tests
grade_one() {
    id=$1 flavor=$2
    set -- solutions/"$id"-*/
    dir=${1%/}
    lname=$(basename "$dir")
    head=$W/rec/$id.$flavor.head
    files=$(cd "$dir" && ls ./*.c | sed 's|^\./||' | tr '\n' ' ')
    [ "$flavor" = normal ] && printf 'lesson\t%s\t%s\t%s\n' "$id" "${lname#??-}" "$files" >"$head"
    limit=$(wall_limit "$id")
    flags=$W/flags.$flavor extra='' sanitized=1
    # what the sanitizers read: exit 66 on a finding (the runner's sign), and an RSS limit
    # in place of the address-space one
    # (two threads: the threaded paths run, and a test's thread count does not depend on
    # the grading machine's cores)
    set -- OMP_NUM_THREADS=2 ASAN_OPTIONS="hard_rss_limit_mb=$SANDBOX_MEMORY_MB${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    if [ "$flavor" = leak ]; then # the plain build's flags and objects, with LeakSanitizer
        flags=$W/flags.normal extra="-fsanitize=leak -fno-omit-frame-pointer"
        set -- OMP_NUM_THREADS=2 LSAN_OPTIONS="exitcode=66${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
        . "$W/vars.normal"
    else
        # shellcheck disable=SC1090 # written above by make grade-vars
        . "$W/vars.$flavor"
        [ "$flavor" = normal ] && sanitized= && set -- OMP_NUM_THREADS=2
    fi
    obj=$W/obj/$flavor/$lname
    log=$W/log/$id.$flavor.build.txt
    mkdir -p "$obj" && : >"$log"
    status=ok
    mine=
    for f in $files; do
        src=$(locate "$lname" "$f")
        if [ -z "$src" ]; then
            status=missing
            echo "there is no $lname/$f in the submission$unpack_note" >"$log"
            break
        fi
        cflags=$(awk -F'\t' -v f="$lname/$f" '$1 == f { print $2; exit }' "$flags")
        [ -n "$cflags" ] || fail "make grade-flags gave no flags for $lname/$f"
        if compile_in_sandbox "$src" "$obj/${f%.c}" "$cflags $extra" >>"$log" 2>&1; then
            bad=$(foreign "$obj/${f%.c}.d")
            if [ -n "$bad" ]; then
                echo "rejected: $f includes $bad; a submission may include only its own files, the kit's headers in harness/include/ and system headers" >"$log"
                status=rejected
                break
            fi
        else
            status=fail
        fi
        mine="$mine $obj/${f%.c}.o"
    done
    if [ "$status" = ok ]; then
        others=
        for o in $G_TREE_OBJ; do
            case $o in */tree-solutions/"$lname"/*) ;; *) others="$others $o" ;; esac
        done
        if [ "$id" = "$MPI_LESSON" ]; then
            # the runner as it is (lesson 12 is not in it), and check-mpi (mk/mpi.mk): the
            # worker, the runner's objects without its main, and the student's file
            base=
            for o in $G_BASE_OBJ; do case $o in */check_main.o) ;; *) base="$base $o" ;; esac; done
            # shellcheck disable=SC2086
            $G_CC $G_LDFLAGS $extra $G_BASE_OBJ $others -o "$obj/check" $G_LDLIBS >>"$log" 2>&1 &&
                $G_CC $G_LDFLAGS $extra $G_EP_WORKER $base $others $mine -o "$obj/check-mpi" \
                    $G_LDLIBS $G_MPI_LIBS >>"$log" 2>&1 || status=fail
        else
            # shellcheck disable=SC2086
            $G_CC $G_LDFLAGS $extra $G_BASE_OBJ $others $mine -o "$obj/check" $G_LDLIBS >>"$log" 2>&1 || status=fail
        fi
    fi
    # the compiler's messages name the student's files as they are in the submission
    unroot "$log"
    printf 'build\t%s\t%s\t%s\t%s\n' "$id" "$flavor" "$status" "$(escape <"$log")" >>"$head"
    [ "$status" = ok ] || return 0
    run_in_sandbox "$id" "$flavor" "$@" >"$W/log/$id.$flavor.run.txt" 2>&1
    rc=$?
    # the verdicts: the judge, with the solutions, on what the sandbox recorded
    "$JUDGE" --judge "$W/rec/$id.$flavor.tape" --seed "$PROPERTY_SEED" --tree "$STUDENT" --fixtures "$FIXTURES" \
        --timeout "$TIMEOUT" --lesson "$id" --max-timeouts "$MAX_TIMEOUTS" \
        --results "$W/rec/$id.$flavor.tests" --tag "$flavor" >"$W/log/$id.$flavor.judge.txt" 2>&1
    unroot "$W/rec/$id.$flavor.tests" "$W/log/$id.$flavor.run.txt"
    case $rc in
    0) printf 'run\t%s\t%s\tok\t\n' "$id" "$flavor" >>"$head" ;;
    124 | 137) printf 'run\t%s\t%s\ttimeout\tthe lesson'"'"'s tests took more than %s s in all\n' \
        "$id" "$flavor" "$limit" >>"$head" ;;
    *) printf 'run\t%s\t%s\tfailed\tthe test runner stopped with status %s\n' "$id" "$flavor" "$rc" >>"$head" ;;
    esac
    # a case that ASan or UBSan stopped (or that crashed under them) never reached the leak
    # check: run the lesson again, with LeakSanitizer alone
    if [ "$flavor" = san ] && [ -f "$W/rec/$id.san.tests" ] &&
        awk -F'\t' '$5 == "MEMORY" || $5 == "CRASH" { found = 1 } END { exit !found }' "$W/rec/$id.san.tests"; then
        grade_one "$id" leak
    fi
}

# JOBS at a time, from a queue: a FIFO holds one token per free slot
mkfifo "$W/slots" || fail "cannot make a FIFO in $W"
exec 3<>"$W/slots"
i=0
while [ $i -lt "$JOBS" ]; do echo >&3; i=$((i + 1)); done
for id in $ids; do
    for flavor in normal san; do
        # the sanitizer builds give only the "memory" and "leaks" items (lesson 12 has none)
        [ "$flavor" = san ] && ! awk -v id="$id" '$1 == id && ($3 == "memory" || $3 == "leaks") { f = 1 } END { exit !f }' "$POINTS" &&
            continue
        read -r _ <&3
        { grade_one "$id" $flavor; echo >&3; } &
    done
done
wait
exec 3>&-

cat "$W/rec/expect.tsv" >"$W/records.tsv"
for id in $ids; do
    for part in normal.head san.head leak.head normal.tests san.tests leak.tests; do
        [ -f "$W/rec/$id.$part" ] && cat "$W/rec/$id.$part" >>"$W/records.tsv"
    done
done

"$REPORT" --points "$POINTS" --records "$W/records.tsv" --student "$STUDENT" \
    --json "$RESULTS/results.json" --table "$RESULTS/table.txt" --csv "$RESULTS/grade.csv" \
    --elapsed $(($(date +%s) - start)) --visibility "$VISIBILITY" --timeout "$TIMEOUT" \
    --note "fixtures $FIXTURES, $TIMEOUT s per test, property seed $PROPERTY_SEED (PROPERTY_SEED= replays it); each lesson built alone against the solutions with make check's flags, plain and with ASan + UBSan$mpi_note" \
    >"$W/table.out" || fail "grade_report failed on $W/records.tsv"
if [ -z "$QUIET" ]; then
    cat "$W/table.out"
    echo
    echo "written: $RESULTS/results.json (Gradescope), $RESULTS/table.txt, $RESULTS/grade.csv"
fi
