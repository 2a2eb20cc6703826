# readme.sh (kit test section): the sample outputs README.md shows (make check, make hint,
# make watch) are what a fresh run prints (harness/test/readme_outputs.sh sets up the
# state README describes in build/readme/; `make readme` rewrites the blocks).
# Sourced by kit_test.sh (ok, bad, $LOG).

echo "README.md's sample outputs match a real run"
sh harness/test/readme_outputs.sh --check >"$LOG/readme.txt" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then
    ok "make check, make hint and make watch print what README.md shows"
else
    bad "README.md's sample outputs (exit $rc; make readme rewrites them)" "$LOG/readme.txt"
fi
