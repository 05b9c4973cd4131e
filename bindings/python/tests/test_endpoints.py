"""count_tokens, embed_content, batch_embed_contents and list_models: they rotate over the keys
and count against the limits of their model."""

from __future__ import annotations

import pytest

from gemini_rotator import AllKeysRateLimitedError, GeminiClient, InvalidArgumentError


def served_labels(emulator, keys):
    return [emulator.requests(k) for k in keys]


def test_count_tokens_rotates(emulator, make_pool):
    keys = emulator.add_keys(3)
    gemini = GeminiClient(make_pool(keys))
    assert [gemini.count_tokens("one two three") for _ in range(3)] == [3, 3, 3]
    assert served_labels(emulator, keys) == [1, 1, 1]
    contents = [{"role": "user", "parts": [{"text": "a b"}]}]
    assert gemini.count_tokens(contents=contents) == 2
    with pytest.raises(TypeError):
        gemini.count_tokens()  # neither prompt nor contents


def test_embeddings_rotate_and_count_under_their_model(emulator, make_pool):
    keys = emulator.add_keys(2)
    pool = make_pool(keys, free_rate_limit=2)
    gemini = GeminiClient(pool)
    one = gemini.embed_content("hello world", output_dimensionality=8, task_type="RETRIEVAL_QUERY")
    assert len(one) == 8 and all(-1 <= v < 1 for v in one)
    many = gemini.batch_embed_contents(["a", "b", "c"], output_dimensionality=4)
    assert [len(v) for v in many] == [4, 4, 4]
    assert served_labels(emulator, keys) == [1, 1]
    assert {e["model"] for e in emulator.log(keys[0]) + emulator.log(keys[1])} == {
        "gemini-embedding-001"
    }
    gemini.embed_content("x")
    gemini.embed_content("y")
    with pytest.raises(AllKeysRateLimitedError):
        gemini.embed_content("z")
    assert served_labels(emulator, keys) == [2, 2]


def test_list_models(emulator, make_pool):
    gemini = GeminiClient(make_pool(emulator.add_keys(1)))
    names = [m["name"] for m in gemini.list_models()]
    assert "models/gemini-3.6-flash" in names and "models/gemini-embedding-001" in names


def test_bad_arguments_are_named(emulator, make_pool):
    gemini = GeminiClient(make_pool(emulator.add_keys(1)))
    with pytest.raises(TypeError, match="text"):
        gemini.embed_content(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output_dimensionality"):
        gemini.embed_content("x", output_dimensionality=0)
    with pytest.raises(InvalidArgumentError, match="model"):
        gemini.count_tokens("x", model="bad model name")
    with pytest.raises(TypeError, match="bogus"):
        gemini.stream_generate_content("x", bogus=1)  # type: ignore[call-arg]
