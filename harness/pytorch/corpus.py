"""The training text of the demo model: Debian's fortune cookies in five languages.

    apt-get install -y fortunes fortunes-de fortunes-es fortunes-it fortunes-ru
    /usr/bin/python3 harness/pytorch/corpus.py --out data/corpus   # held-out files + sizes

A fortune file holds fortunes separated by lines that hold only `%`. Each fortune's
language is its Debian package's (`dpkg -L`), not its folder: fortunes-it also puts links
in the top folder, where the English ones live. Cleaning, in this order: CRLF -> LF,
backspace overstrikes removed (`X\\bX` bold and `_\\bX` underline keep the X), every other
control character except tab and newline dropped (a bell, one stray ESC). Text stays UTF-8.
Files under an `off/` folder (offensive fortunes) are skipped, so are the `.dat` indexes and
the `.u8` links. A fortune that repeats one seen before in the same language is dropped.

Held-out split: a fortune is held out iff the first 4 bytes of sha256(fortune), read as a
big-endian integer, are 0 mod 20 (5%). The split depends only on the text, so it is stable
across machines and package versions, and a fortune duplicated elsewhere lands on the same
side. `heldout-LANG.txt` keeps the held-out fortunes in order of that hash until
HELDOUT_MAX_BYTES: a small, fixed file the C `perplexity` tool can read. Held-out fortunes
that do not fit are not trained on either.

Both the held-out files and the training stream use the fortune file layout: every fortune
is its lines, each ending in "\\n", followed by the line "%\\n".
"""

import argparse
import hashlib
import os
import re
import subprocess

LANG_OF_PACKAGE = {"fortunes": "en", "fortunes-de": "de", "fortunes-es": "es",
                   "fortunes-it": "it", "fortunes-ru": "ru"}
LANGS = tuple(LANG_OF_PACKAGE.values())
FORTUNE_DIR = "/usr/share/games/fortunes/"
HELDOUT_EVERY = 20           # 1 fortune in 20 is held out
HELDOUT_MAX_BYTES = 60_000   # per language file
SEPARATOR = "%\n"            # ends every fortune, in the files and in the training stream

_OVERSTRIKE = re.compile(".\x08")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # all C0 controls but \t and \n, and DEL


def package_files(package: str) -> list[str]:
    """Fortune text files installed by a Debian package, sorted, links resolved once."""
    listing = subprocess.run(["dpkg", "-L", package], check=True, capture_output=True,
                             text=True).stdout.split("\n")
    files = set()
    for path in listing:
        if (not path.startswith(FORTUNE_DIR) or path.endswith((".dat", ".u8"))
                or "off" in path[len(FORTUNE_DIR):].split("/")):
            continue
        if os.path.isfile(path):
            files.add(os.path.realpath(path))  # fortunes-it's top-folder links -> it/
    return sorted(files)


def clean(text: str) -> str:
    """CRLF -> LF, overstrikes resolved to the struck character, other controls dropped."""
    text = text.replace("\r\n", "\n")
    while "\x08" in text:
        stripped = _OVERSTRIKE.sub("", text)
        if stripped == text:  # a backspace at the very start has nothing to erase
            stripped = text.replace("\x08", "")
        text = stripped
    return _CONTROL.sub("", text)


def split_fortunes(text: str) -> list[str]:
    """A cleaned fortune file -> its fortunes, each its lines + "\\n", blank ones dropped.

    Leading and trailing blank lines of a fortune are dropped; inner ones are kept.
    """
    fortunes, lines = [], []
    for line in text.split("\n") + ["%"]:  # the sentinel flushes the last fortune
        if line != "%":
            lines.append(line)
            continue
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            fortunes.append("\n".join(lines) + "\n")
        lines = []
    return fortunes


def heldout_key(fortune: str) -> int:
    """The fortune's split hash: the first 4 bytes of its sha256, big-endian."""
    return int.from_bytes(hashlib.sha256(fortune.encode("utf-8")).digest()[:4], "big")


def is_heldout(fortune: str) -> bool:
    return heldout_key(fortune) % HELDOUT_EVERY == 0


def language_fortunes(lang: str) -> list[str]:
    """All fortunes of one language, file order, duplicates dropped."""
    package = next(p for p, l in LANG_OF_PACKAGE.items() if l == lang)
    seen, fortunes = set(), []
    for path in package_files(package):
        with open(path, encoding="utf-8") as f:
            for fortune in split_fortunes(clean(f.read())):
                if fortune not in seen:
                    seen.add(fortune)
                    fortunes.append(fortune)
    return fortunes


def split_language(lang: str) -> tuple[list[str], list[str]]:
    """-> (training fortunes in file order, held-out fortunes that fit the held-out file)."""
    fortunes = language_fortunes(lang)
    train = [f for f in fortunes if not is_heldout(f)]
    heldout, size = [], 0
    for fortune in sorted((f for f in fortunes if is_heldout(f)), key=heldout_key):
        n = len(fortune.encode("utf-8")) + len(SEPARATOR)
        if size + n > HELDOUT_MAX_BYTES:
            break
        heldout.append(fortune)
        size += n
    return train, heldout


def join(fortunes: list[str]) -> bytes:
    """Fortunes -> fortune file bytes: each fortune followed by "%\\n"."""
    return "".join(f + SEPARATOR for f in fortunes).encode("utf-8")


def read_heldout(path: str) -> list[bytes]:
    """A heldout-LANG.txt -> its fortunes as UTF-8 bytes (each ends in b"\\n")."""
    with open(path, encoding="utf-8") as f:
        return [f.encode("utf-8") for f in split_fortunes(f.read())]


def build(out_dir: str | None = None) -> tuple[bytes, dict]:
    """Builds the corpus of all languages.

    Returns (training stream: the training fortunes of every language in LANGS order, joined;
    stats {lang: {"fortunes", "train_bytes", "heldout_fortunes", "heldout_bytes"}}).
    With out_dir, also writes out_dir/heldout-LANG.txt.
    """
    stream, stats = [], {}
    for lang in LANGS:
        train, heldout = split_language(lang)
        train_bytes, heldout_bytes = join(train), join(heldout)
        stream.append(train_bytes)
        stats[lang] = {"fortunes": len(train), "train_bytes": len(train_bytes),
                       "heldout_fortunes": len(heldout), "heldout_bytes": len(heldout_bytes)}
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, f"heldout-{lang}.txt"), "wb") as f:
                f.write(heldout_bytes)
    return b"".join(stream), stats


def format_stats(stats: dict) -> str:
    """The per-language size table (Markdown), for the console and the model card."""
    rows = ["| language | training fortunes | training bytes | held-out fortunes | "
            "held-out bytes |", "|---|---:|---:|---:|---:|"]
    for lang, s in stats.items():
        rows.append(f"| {lang} | {s['fortunes']} | {s['train_bytes']} | "
                    f"{s['heldout_fortunes']} | {s['heldout_bytes']} |")
    total = {k: sum(s[k] for s in stats.values()) for k in next(iter(stats.values()))}
    rows.append(f"| all | {total['fortunes']} | {total['train_bytes']} | "
                f"{total['heldout_fortunes']} | {total['heldout_bytes']} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/corpus", help="where heldout-LANG.txt go")
    args = ap.parse_args()
    _, stats = build(args.out)
    print(format_stats(stats))


if __name__ == "__main__":
    main()
