"""The bundled EfficientNet-Lite weights are loaded and used right."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.models import get_extractor, list_models
from lookalike.models.effnet import EFFNET_SPECS, EFFNET_VARIANTS, GEM_P, build_export_module, load_torch_model
from lookalike.models.onnx_extractor import OnnxExtractor


@pytest.fixture(scope="module")
def lite0():
    return get_extractor("effnet-lite0")


def _labels(extractor, image):
    return [name for name, _ in extractor.classify([image])[0]]


def test_chelsea_is_a_cat_and_coffee_is_espresso(lite0, photos):
    cat_labels = _labels(lite0, photos["chelsea"])
    assert any("cat" in name for name in cat_labels[:2]), cat_labels
    coffee = _labels(lite0, photos["coffee"])
    assert coffee[0].split(",")[0] in {"espresso", "cup", "coffee mug"}, coffee


@pytest.mark.parametrize("name", sorted(EFFNET_SPECS))
def test_onnx_matches_pytorch(name, photos):
    torch = pytest.importorskip("torch")  # fine-tuning's extra; inference runs without it

    extractor = get_extractor(name)
    spec = EFFNET_SPECS[name]
    assert spec.pooling == ("gem" if name == "effnet-lite0" else "avg")  # the measured default (README)
    images = [photos["chelsea"], photos["rocket"], photos["camera"]]
    batch = np.stack([extractor.preprocess(im) for im in images])
    onnx_vecs = extractor.embed_batch(batch).vectors
    net = load_torch_model(spec)
    with torch.no_grad():
        x = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() - 127.0) / 128.0
        fmap = net.extract_features(x)
        pooled = fmap.clamp(min=1e-6).pow(GEM_P).mean((2, 3)).pow(1 / GEM_P) if spec.pooling == "gem" else fmap.mean((2, 3))
        if spec.extra_stages:  # multi-layer: the torch export module catches the stage outputs
            pooled = build_export_module(net, with_probs=False, pooling=spec.pooling, extra_stages=spec.extra_stages,
                                         arch=spec.arch)(torch.from_numpy(batch))
        ref = torch.nn.functional.normalize(pooled, dim=1).numpy()
    assert onnx_vecs.shape == (3, spec.dim)
    assert np.abs(onnx_vecs - ref).max() < 1e-4


def test_embeddings_are_normalised_and_discriminative(lite0, photos):
    vecs = lite0.embed([photos["chelsea"], photos["chelsea"].transpose(0), photos["rocket"]])
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # A mirrored cat is closer to the cat than a rocket is.
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2


def test_idle_model_threads_sleep_and_give_the_same_vectors(lite0, photos):
    # Spin-waiting pool threads took the cores the indexer's decode threads need
    # (bench/index_throughput.py); the old session stays available to measure against.
    spin = "session.intra_op.allow_spinning"
    assert lite0.session.get_session_options().get_session_config_entry(spin) == "0"
    old = OnnxExtractor(lite0.name, lite0.onnx_path, lite0.input_size, lite0.dim, labels=lite0.labels, spinning=True)
    assert old.session.get_session_options().get_session_config_entry(spin) == "1"
    images = [photos["chelsea"], photos["rocket"]]
    np.testing.assert_allclose(lite0.embed(images), old.embed(images), atol=1e-6)


def test_indexing_runs_the_same_model_on_the_threads_asked_for(lite0, photos):
    # All threads by default (fewer cost throughput on an idle machine: bench/index_throughput.py).
    assert lite0.for_indexing() is lite0
    for threads, expected in ((4, 2), (3, 1), (1, 1)):
        ext = OnnxExtractor(lite0.name, lite0.onnx_path, lite0.input_size, lite0.dim, labels=lite0.labels, threads=threads,
                            indexing_threads=max(1, threads // 2))
        indexing = ext.for_indexing()
        assert indexing.session.get_session_options().intra_op_num_threads == expected
        assert ext.for_indexing() is indexing  # one session, made once
        assert indexing.for_indexing() is indexing  # never halved twice
        assert (indexing is ext) == (threads == expected)
    images = [photos["chelsea"], photos["rocket"]]
    np.testing.assert_allclose(lite0.for_indexing().embed(images), lite0.embed(images), atol=1e-5)


def test_registry_lists_bundled_models():
    names = {m.name for m in list_models()}
    assert {"effnet-lite0", "effnet-lite2"} <= names


def test_gem_and_average_pooling(photos):
    """GeM graphs pool the embedding with the generalised mean (p=3); the class probabilities
    still come from average pooling, as the classifier was trained."""
    torch = pytest.importorskip("torch")

    assert EFFNET_VARIANTS["effnet-lite0-avg"].pooling == "avg"
    net = load_torch_model(EFFNET_SPECS["effnet-lite0"])
    batch = torch.from_numpy(np.stack([get_extractor("effnet-lite0").preprocess(photos["coffee"])]))
    with torch.no_grad():
        emb, probs = build_export_module(net, pooling="gem")(batch)
        avg_emb, avg_probs = build_export_module(net)(batch)
        fmap = net.extract_features((batch.permute(0, 3, 1, 2).float() - 127.0) / 128.0)
    ref = torch.nn.functional.normalize(fmap.clamp(min=1e-6).pow(GEM_P).mean((2, 3)).pow(1 / GEM_P), dim=1)
    assert torch.allclose(emb, ref, atol=1e-5) and torch.allclose(probs, avg_probs)
    assert not torch.allclose(emb, avg_emb, atol=1e-3)
    with pytest.raises(ValueError):
        build_export_module(net, pooling="max")
