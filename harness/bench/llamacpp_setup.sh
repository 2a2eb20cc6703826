#!/bin/sh
# llamacpp_setup.sh: llama.cpp for the bench, from the npm package node-llama-cpp, pinned.
#
#   sh harness/bench/llamacpp_setup.sh BUILD_DIR CC
#
# 1. npm installs node-llama-cpp@3.21.1 into BUILD_DIR (once), with its install scripts
#    off (--ignore-scripts: its postinstall would look for, download or compile a
#    llama.cpp) and NODE_LLAMA_CPP_SKIP_DOWNLOAD=true besides. The prebuilt CPU libraries
#    come in its optional dependency @node-llama-cpp/linux-x64 (or linux-arm64), named
#    here at the same version; the other optional ones (CUDA, Vulkan builds: 650 MB) are
#    left out (--omit=optional). About 85 MB in all.
# 2. The package carries the matching llama.cpp source as a git bundle
#    (llama/gitRelease.bundle): llama.h and ggml's headers are read out of it with git.
# 3. Builds BUILD_DIR/llamacpp_bench from harness/bench/llamacpp_bench.c against the
#    package's libllama, libggml and libggml-base, with an rpath to them.
#
# Prints "ok <driver> <backends dir> <llama.cpp release>" on the last line, or one line
# "skipped: <why>" and exits 3 when something is missing (npm, git, the package, a linux
# x64/arm64 prebuilt). Nothing is downloaded but the npm package; nothing is compiled but
# the driver.
set -u
PKG=node-llama-cpp@3.21.1
dir=${1:?usage: llamacpp_setup.sh BUILD_DIR CC}
cc=${2:-cc}
skip() { echo "skipped: $*"; exit 3; }

command -v npm >/dev/null 2>&1 || skip "npm is not installed (apt-get install nodejs npm)"
command -v git >/dev/null 2>&1 || skip "git is not installed"
case "$(uname -m)" in
x86_64) plat=linux-x64 ;;
aarch64) plat=linux-arm64 ;;
*) skip "no prebuilt llama.cpp for $(uname -s) $(uname -m) in $PKG" ;;
esac
mkdir -p "$dir" || skip "cannot create $dir"
nm="$dir/node_modules"
want=$(echo "$PKG" | sed 's/.*@//')
have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$nm/node-llama-cpp/package.json" 2>/dev/null)
if [ "$have" != "$want" ]; then
    echo "installing $PKG into $dir (npm, install scripts off) ..." >&2
    NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --prefix "$dir" --ignore-scripts --no-audit \
        --no-fund --omit=optional "$PKG" "@node-llama-cpp/$plat@$want" >"$dir/npm.log" 2>&1 ||
        skip "npm install $PKG failed: $(tail -1 "$dir/npm.log")"
fi
bins="$nm/@node-llama-cpp/$plat/bins/$plat"
lib=$(ls "$bins"/libllama.v*.so 2>/dev/null | head -1)
ggml=$(ls "$bins"/libggml.v*.so 2>/dev/null | head -1)
[ -n "$lib" ] && [ -n "$ggml" ] && [ -f "$bins/libggml-base.so" ] ||
    skip "$bins: no libllama/libggml (did npm leave out @node-llama-cpp/$plat?)"
release=$(sed -n 's/.*"tag": "\(.*\)".*/\1/p' "$nm/node-llama-cpp/llama/llama.cpp.info.json")

# the headers of that release, from the bundle
inc="$dir/include"
if [ ! -f "$inc/llama.h" ]; then
    bundle="$nm/node-llama-cpp/llama/gitRelease.bundle"
    [ -f "$bundle" ] || skip "$bundle is missing: no llama.h to build against"
    git init -q --bare "$dir/src.git" && git -C "$dir/src.git" fetch -q "$(cd "$(dirname "$bundle")" && pwd)/$(basename "$bundle")" HEAD ||
        skip "git cannot read $bundle"
    mkdir -p "$inc.tmp" &&
        git -C "$dir/src.git" archive FETCH_HEAD include/llama.h ggml/include | tar -x -C "$inc.tmp" ||
        skip "$bundle has no include/llama.h"
    mkdir -p "$inc" && cp "$inc.tmp"/include/llama.h "$inc.tmp"/ggml/include/*.h "$inc/" && rm -rf "$inc.tmp"
fi

# the driver
drv="$dir/llamacpp_bench"
src=harness/bench/llamacpp_bench.c
if [ ! -x "$drv" ] || [ "$src" -nt "$drv" ] || [ harness/src/clock.c -nt "$drv" ]; then
    libdir=$(cd "$bins" && pwd)
    $cc -std=c11 -O2 -Wall -Wextra -Werror -I"$inc" -Iharness/src "$src" harness/src/clock.c -o "$drv" \
        "$libdir/$(basename "$lib")" "$libdir/$(basename "$ggml")" "$libdir/libggml-base.so" \
        -Wl,-rpath,"$libdir" >"$dir/build.log" 2>&1 ||
        skip "$cc could not build $src against $bins: $(head -1 "$dir/build.log")"
fi
echo "ok $drv $(cd "$bins" && pwd) $release"
