# README.md's sample outputs (make check, make hint, make watch), from a real run in a
# scratch copy of the kit (harness/test/readme_outputs.sh; make test checks them).

.PHONY: readme

readme:
	@sh harness/test/readme_outputs.sh --write
