"""The torch-free ONNX builder: same outputs as the PyTorch export, checkpoints read safely."""

from __future__ import annotations

import os
import pickle

import numpy as np
import onnxruntime as ort
import pytest

from lookalike.errors import LookalikeError
from lookalike.models.checkpoint import LEGACY_MAGIC, read_state_dict
from lookalike.models.effnet import EFFNET_SPECS, EFFNET_VARIANTS, build_onnx, weights_path
from lookalike.models.imagenet_labels import imagenet_labels
from lookalike.models.onnx_graph import lite_blocks
from lookalike.models.preprocess import resize_square

SPECS = {**EFFNET_SPECS, **EFFNET_VARIANTS}
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "camera"]


def _run(path, batch):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": batch})


def _batch(photos, size):
    return np.stack([resize_square(photos[name], size) for name in PHOTOS])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_built_graph_matches_the_torch_export(name, photos, tmp_path):
    pytest.importorskip("torch")
    from lookalike.models.effnet import build_export_module, export_onnx, load_torch_model

    spec = SPECS[name]
    built = build_onnx(spec, tmp_path / "built.onnx")
    exported = export_onnx(build_export_module(load_torch_model(spec), pooling=spec.pooling,
                                               extra_stages=spec.extra_stages, arch=spec.arch),
                           tmp_path / "torch.onnx", spec.input_size)
    batch = _batch(photos, spec.input_size)
    (emb, probs), (ref_emb, ref_probs) = _run(built, batch), _run(exported, batch)
    assert emb.shape == (len(PHOTOS), spec.dim) and probs.shape == (len(PHOTOS), 1000)
    assert np.abs(emb - ref_emb).max() < 1e-4
    assert np.abs(probs - ref_probs).max() < 1e-4
    assert (probs.argmax(1) == ref_probs.argmax(1)).all()


def test_built_graph_classifies_real_photos(photos, tmp_path):
    """Runs without torch too: the graph alone must see the cat and the espresso."""
    spec = EFFNET_SPECS["effnet-lite0"]
    emb, probs = _run(build_onnx(spec, tmp_path / "m.onnx"), _batch(photos, spec.input_size))
    labels = imagenet_labels()
    top = {name: labels[int(i)] for name, i in zip(PHOTOS, probs.argmax(1))}
    assert "cat" in top["chelsea"], top
    assert top["coffee"].split(",")[0] in {"espresso", "cup", "coffee mug"}, top
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)


def test_block_table_matches_the_checkpoints():
    """The vendored architecture table gives exactly the blocks each checkpoint holds."""
    for spec in SPECS.values():
        weights = read_state_dict(weights_path(spec))
        blocks = lite_blocks(spec.arch)
        assert len(blocks) == 1 + max(int(k.split(".")[1]) for k in weights if k.startswith("_blocks."))
        for i, b in enumerate(blocks):
            assert weights[f"_blocks.{i}._project_conv.weight"].shape[:2] == (b.out, b.inp * b.expand)
            assert weights[f"_blocks.{i}._depthwise_conv.weight"].shape[-1] == b.kernel


@pytest.mark.parametrize("zip_form", [True, False])
def test_checkpoint_reader_matches_torch_load(zip_form, tmp_path):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=gen)
    state = {"w": base, "t": base.t(), "slice": base[2:4], "count": torch.tensor(7), "ids": torch.arange(4),
             "half": torch.randn(3, generator=gen).half()}
    path = tmp_path / "ck.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_form)
    read = read_state_dict(path)
    assert set(read) == set(state)
    for name, tensor in state.items():
        assert read[name].dtype == tensor.numpy().dtype and np.array_equal(read[name], tensor.numpy()), name


def test_checkpoint_reader_never_runs_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for part in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}, {"w": Evil()}):
            pickle.dump(part, f, protocol=2)
    with pytest.raises(LookalikeError, match="evil.pth.*never needs"):
        read_state_dict(path)
    assert not marker.exists()


def test_truncated_checkpoint_is_one_line_error(tmp_path):
    data = open(weights_path(EFFNET_SPECS["effnet-lite0"]), "rb").read()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LookalikeError, match="cut.pth: not a readable PyTorch state dict"):
        read_state_dict(path)
