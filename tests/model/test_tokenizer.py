"""GPT-2's real BPE: known ids, odd inputs, and labels a student can read."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Data visualization empowers users to", [6601, 32704, 795, 30132, 2985, 284]),
        ("what a beautiful day", [10919, 257, 4950, 1110]),
        ("\n\n", [628]),
    ],
)
def test_known_ids(tokenizer, text, ids):
    assert tokenizer.encode(text) == ids
    assert tokenizer.decode(ids) == text


def test_vocabulary_is_gpt2s(tokenizer):
    assert tokenizer.vocab_size == 50257
    assert tokenizer.token(50256).text == "<|endoftext|>"


def test_typed_end_of_text_is_plain_text(tokenizer):
    """The marker typed by a user is read as its characters, never as the special token 50256."""
    from model.tokenizer import END_OF_TEXT, END_OF_TEXT_ID

    assert tokenizer.token(END_OF_TEXT_ID).text == END_OF_TEXT
    ids = tokenizer.encode(f"Hello {END_OF_TEXT}World")
    assert END_OF_TEXT_ID not in ids
    labels = [t.label for t in tokenizer.tokens(ids)]
    assert labels == ["Hello", " <", "|", "end", "of", "text", "|", ">", "World"]


def test_labels_decode_each_id_alone(tokenizer):
    labels = [t.label for t in tokenizer.tokens(tokenizer.encode("Data visualization"))]
    assert labels == ["Data", " visualization"]  # a real space, not byte-level "Ġ"


def test_leading_spaces(tokenizer):
    ids = tokenizer.encode("  leading")
    assert [t.label for t in tokenizer.tokens(ids)] == [" ", " leading"]


@pytest.mark.parametrize(
    "text", ["😀", "世界", "naïve café", "\u202eevil", "a\x00b", "<script>alert(1)</script>"]
)
def test_odd_text_round_trips_and_labels_are_faithful(tokenizer, text):
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    tokens = tokenizer.tokens(ids)
    assert b"".join(t.raw for t in tokens) == text.encode("utf-8")
    for t in tokens:
        assert "\ufffd" not in t.label
        assert t.partial == ("\ufffd" in t.text)


def test_partial_utf8_is_shown_as_bytes(tokenizer):
    tokens = tokenizer.tokens(tokenizer.encode("世"))  # U+4E16 = E4 B8 96, split over two tokens
    assert [t.label for t in tokens] == ["<E4><B8>", "<96>"]
    assert all(t.partial for t in tokens)


def test_emoji_after_a_space_keeps_the_space_readable(tokenizer):
    first = tokenizer.tokens(tokenizer.encode(" 😀"))[0]
    assert first.label.startswith(" <F0>")


def test_a_long_text(tokenizer):
    ids = tokenizer.encode(" the" * 1024)
    assert ids == [262] * 1024


def test_out_of_range_id(tokenizer):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.token(50257)
