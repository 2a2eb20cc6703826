#!/bin/sh
# release.sh: the kit as students get it (`make student-release`): a tarball without
# solutions/ and without what would give them away.
#
# Left out: solutions/; harness/mistakes/ (diffs against the solutions); harness/grade/
# (the grader builds against the solutions); the kit's own tests (harness/test/kit_test.d/,
# harness/test/hostile/, .ci/); build/, .git/ and editor leftovers. harness/test/kit_test.sh becomes a stub, so
# that `make test` tests the student's lessons (`make check`) instead of failing for want
# of solutions/.
#
# Before it writes the tarball it checks that no file left in holds a line of a solution
# that is not also in the skeletons or the API header: not the READMEs, and not the hints
# (lessons/*/hints.md, shipped for `make hint`), which describe the code and never quote it.
# Environment: RELEASE (the tarball to write), MAKE.
set -u
RELEASE=${RELEASE:-build/release/moekit-student.tar.gz}
case $RELEASE in *.tar.gz | *.tgz) ;; *) echo "make student-release: RELEASE must end in .tar.gz or .tgz" >&2; exit 2 ;; esac
stage=build/release/stage
rm -rf "$stage" && mkdir -p "$stage/moekit" "$(dirname "$RELEASE")" || exit 2

tar -cf - \
    --exclude=./build --exclude=./.git --exclude=./solutions --exclude=./.ci \
    --exclude=./harness/mistakes --exclude=./harness/grade --exclude=./harness/test/kit_test.d \
    --exclude=./harness/test/hostile \
    --exclude=./.moekit-hints --exclude='*.orig' --exclude='*.rej' --exclude='*~' \
    --exclude='*.swp' --exclude=__pycache__ --exclude='*.pyc' . |
    (cd "$stage/moekit" && tar -xf -) || { echo "make student-release: copying the kit failed" >&2; exit 2; }

cat >"$stage/moekit/harness/test/kit_test.sh" <<'EOF'
#!/bin/sh
# kit_test.sh, student release: `make test` is the kit's own test, and it needs the
# solutions a student release leaves out. Here it tests your lessons, like `make check`.
echo "make test: this is the student release, so it tests your lessons (the same as make check)."
exec ${MAKE:-make} --no-print-directory check CC="${CC:-cc}" SANITIZE="${SANITIZE:-}" \
    FIXTURES="${FIXTURES:-data/fixtures}"
EOF

# solution lines: in solutions/, long enough to mean something, not a bare loop header or
# comment, and in no skeleton nor in the API header
patterns=build/release/solution-lines.txt
cat lessons/*/*.c harness/include/moekit.h | sed 's/^[ 	]*//; s/[ 	]*$//' | sort -u >"$patterns.public"
cat solutions/*/*.c | sed 's/^[ 	]*//; s/[ 	]*$//' | awk 'length($0) >= 24' |
    grep -Ev '^(for \(int [a-z]+ = [0-9]+; [a-z]+ < [A-Za-z_>.-]+; [a-z]+\+\+\) ?\{?|/?\*.*|//.*)$' |
    sort -u | comm -23 - "$patterns.public" >"$patterns"
: >"$patterns.found"
[ -s "$patterns" ] &&
    find "$stage/moekit" -type f ! -name '*.safetensors' -exec \
        awk 'FILENAME == pat { p[$0] = 1; next }
             { l = $0; sub(/^[ \t]+/, "", l); sub(/[ \t]+$/, "", l)
               if (l in p) print substr(FILENAME, length(stage) + 2) ":" FNR ": " l }' \
            stage="$stage/moekit" pat="$patterns" "$patterns" {} + >"$patterns.found"
if [ -s "$patterns.found" ]; then
    echo "make student-release: these files would give solutions away (lines of solutions/):" >&2
    head -20 "$patterns.found" | sed 's/^/  /' >&2
    echo "no tarball written." >&2
    exit 1
fi

tar -czf "$RELEASE" -C "$stage" moekit || exit 2
rm -rf "$stage"
echo "written: $RELEASE ($(wc -c <"$RELEASE" | tr -d ' ') bytes, $(tar -tzf "$RELEASE" | grep -c '[^/]$') files)"
echo "it has no solutions/, no harness/mistakes/, no grader; make test there runs make check."
