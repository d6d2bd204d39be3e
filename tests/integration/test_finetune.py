"""Fine-tuning at CI size: a few hundred Fashion-MNIST images, one short epoch, small inputs.
The run is real (pretrained weights, real loss, real ONNX export into a temporary cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lookalike import Library
from lookalike.errors import LookalikeError, ModelMismatchError
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from lookalike.models import get_extractor, list_models, model_info

pytestmark = pytest.mark.skipif(not fashion_mnist_available(), reason="Debian's dataset-fashion-mnist is not installed")

NAME = "fm-tiny"
SETTINGS = dict(limit=300, epochs=1, resolution=32, batch_size=30, seed=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private model cache for this module (fine-tuned models land in it)."""
    path = tmp_path_factory.mktemp("ft-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOKALIKE_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def train_data():
    return load_fashion_mnist("train")


@pytest.fixture(scope="module")
def trained(cache, train_data):
    from lookalike.training.finetune import FinetuneConfig, finetune

    events = []
    result = finetune(FinetuneConfig(name=NAME, **SETTINGS), train_data, "fashion-mnist train (test)",
                      on_event=events.append)
    return result, events


def _batch_loss(model, inputs, labels) -> float:
    from lookalike.training.data import normalise
    from lookalike.training.losses import SupConLoss

    model.eval()
    with torch.no_grad():
        return float(SupConLoss()(model(normalise(torch.from_numpy(inputs))), torch.from_numpy(labels)))


def test_loss_falls_on_training_images(trained, train_data):
    from lookalike.training.data import prepare_inputs, split_train_val
    from lookalike.training.finetune import FinetuneConfig, select_data
    from lookalike.training.network import EmbeddingNet

    result, events = trained
    data = select_data(train_data, FinetuneConfig(name=NAME, **SETTINGS))
    train_idx, _ = split_train_val(data.labels, seed=0)
    pick = train_idx[:: max(1, len(train_idx) // 120)]
    inputs, labels = prepare_inputs(data.subset(pick), 32), data.labels[pick]
    torch.manual_seed(0)
    pretrained = EmbeddingNet("effnet-lite0", frozen_stages=2)
    before, after = _batch_loss(pretrained, inputs, labels), _batch_loss(result.model, inputs, labels)
    assert after < before - 0.05, (before, after)
    steps = [e for e in events if e.kind == "step"]
    assert steps and steps[-1].step == steps[-1].steps and all(np.isfinite(e.loss) for e in steps)


def test_validation_map_not_worse_than_pretrained(trained):
    metrics = trained[0].manifest["metrics"]
    assert metrics["val_map_at_100"] >= metrics["val_map_at_100_pretrained"], metrics


def test_exported_onnx_matches_pytorch(trained, train_data):
    from lookalike.training.data import prepare_inputs
    from lookalike.training.network import embed_inputs

    result, _ = trained
    extractor = get_extractor(NAME)
    images = [train_data.image(i) for i in range(50_000, 50_012)]
    batch = np.stack([extractor.preprocess(im) for im in images])
    assert batch.shape == (12, 32, 32, 3)
    onnx_vecs = extractor.embed_batch(batch).vectors
    torch_vecs = embed_inputs(result.model, prepare_inputs(train_data.subset(np.arange(50_000, 50_012)), 32))
    assert onnx_vecs.shape == (12, 1280)
    np.testing.assert_allclose(np.linalg.norm(onnx_vecs, axis=1), 1.0, atol=1e-5)
    assert np.abs(onnx_vecs - torch_vecs).max() < 1e-4


def test_manifest_and_registry(trained, cache):
    manifest = json.loads((cache / "models" / NAME / "manifest.json").read_text())
    assert manifest["base"] == "effnet-lite0" and manifest["resolution"] == 32 and manifest["dim"] == 1280
    assert manifest["classes"][0] == "T-shirt/top" and len(manifest["classes"]) == 10
    assert manifest["seed"] == 0 and manifest["date"].endswith("Z") and manifest["onnx_max_abs_diff"] < 1e-4
    info = model_info(NAME)
    assert info.kind == "fine-tuned" and info.dim == 1280
    assert NAME in {m.name for m in list_models()}


def test_existing_name_and_bad_settings_are_refused(trained, train_data):
    from lookalike.training.finetune import FinetuneConfig, finetune

    with pytest.raises(LookalikeError, match="already exists"):
        finetune(FinetuneConfig(name=NAME, **SETTINGS), train_data, "x")
    with pytest.raises(LookalikeError, match="bundled"):
        finetune(FinetuneConfig(name="effnet-lite0", **SETTINGS), train_data, "x")
    with pytest.raises(LookalikeError, match="unknown class"):
        finetune(FinetuneConfig(name="other", classes=["Sneaker", "Tuxedo"], **SETTINGS), train_data, "x")
    with pytest.raises(LookalikeError, match="nothing to resume"):
        finetune(FinetuneConfig(name="never-run", **SETTINGS), train_data, "x", resume=True)


def test_finetuned_model_indexes_and_searches(trained, train_data, tmp_path):
    test = load_fashion_mnist("test")
    folder = tmp_path / "shop"
    folder.mkdir()
    picks = [int(i) for c in range(10) for i in np.flatnonzero(test.labels == c)[:3]]
    for i in picks:
        test.image(i).save(folder / f"{i:05d}-{test.labels[i]}.png")
    with Library.open(tmp_path / "lib", model=NAME) as lib:
        report = lib.add([folder])
        assert report.added == len(picks) and report.failed == []
        query = folder / f"{picks[4]:05d}-{test.labels[picks[4]]}.png"
        hits = lib.search(test.image(picks[4]).transpose(0), k=3)  # a mirrored copy of an indexed shoe
        assert hits[0].path == str(query) and hits[0].score > 0.9
        assert lib.info()["model"] == NAME
    with pytest.raises(ModelMismatchError, match="not comparable"):
        Library.open(tmp_path / "lib", model="effnet-lite0")


def test_cli_models_and_index_with_finetuned_model(trained, cache, tmp_path, train_data):
    env = {**os.environ, "LOOKALIKE_CACHE": str(cache)}
    cli = [sys.executable, "-m", "lookalike"]
    listed = json.loads(subprocess.run([*cli, "models", "--json"], capture_output=True, env=env, check=True).stdout)
    assert {"name": NAME, "kind": "fine-tuned"}.items() <= next(m for m in listed if m["name"] == NAME).items()
    (tmp_path / "pics").mkdir()
    for i in range(6):
        train_data.image(i).save(tmp_path / "pics" / f"{i}.png")
    proc = subprocess.run([*cli, "index", tmp_path / "pics", "--model", NAME, "-l", tmp_path / "lib", "--json"],
                          capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["added"] == 6
    train_data.image(3).transpose(0).save(tmp_path / "query.png")  # a mirrored copy of image 3
    proc = subprocess.run([*cli, "search", tmp_path / "query.png", "-l", tmp_path / "lib", "--json", "-k", "1"],
                          capture_output=True, env=env)
    data = json.loads(proc.stdout)
    assert data["model"] == NAME and data["results"][0]["path"] == str(tmp_path / "pics" / "3.png")
    proc = subprocess.run([*cli, "finetune", "fashion-mnist", "--name", NAME, "--limit", "300"], capture_output=True, env=env)
    assert proc.returncode == 1 and b"already exists" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_default_resolution_follows_the_images_and_is_printed(cache):
    """Fashion-MNIST's 28-pixel images train at 64 px by default (their own size rounded up,
    at least 64: docs/fine-tuning.md); the user sees the choice before training starts."""
    env = {**os.environ, "LOOKALIKE_CACHE": str(cache)}
    proc = subprocess.run([sys.executable, "-m", "lookalike", "finetune", "fashion-mnist", "--name", "fm-default-res",
                           "--limit", "40", "--epochs", "1", "--batch-size", "20", "--freeze", "7", "--threads", "1",
                           "--json"], capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "resizing 40 images to 64px (default for 28-pixel images; " in proc.stderr.decode()
    assert json.loads(proc.stdout)["resolution"] == 64
    assert model_info("fm-default-res").dim == 1280


def test_interrupted_run_resumes_to_the_same_result(cache, train_data, monkeypatch):
    from lookalike.training import finetune as ft
    from lookalike.training.finetune import FinetuneConfig, finetune

    monkeypatch.setattr(ft, "CHECKPOINT_SECONDS", 0.0)  # checkpoint after every step
    quick = dict(limit=120, epochs=2, resolution=32, batch_size=27, freeze=5, seed=3)  # 4 steps per epoch
    full = finetune(FinetuneConfig(name="resume-ref", **quick), train_data, "x")

    def interrupt_in_second_epoch(event) -> None:
        if event.kind == "step" and event.step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(FinetuneConfig(name="resume-me", **quick), train_data, "x", on_event=interrupt_in_second_epoch)
    with pytest.raises(LookalikeError, match="unknown model"):
        model_info("resume-me")  # nothing half-written is visible as a model
    with pytest.raises(LookalikeError, match="different settings"):
        finetune(FinetuneConfig(name="resume-me", **{**quick, "lr": 1e-3}), train_data, "x", resume=True)
    resumed = finetune(FinetuneConfig(name="resume-me", **quick), train_data, "x", resume=True)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    for a, b in zip(full.history[1:], resumed.history[1:]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4) and a["map_at_100"] == pytest.approx(b["map_at_100"], abs=1e-3)


def test_leave_one_out_map_on_a_gallery_smaller_than_k():
    from lookalike.training.evaluate import leave_one_out

    labels = np.array([0, 0, 1, 1, 1, 2, 2])
    vecs = np.eye(3, dtype=np.float32)[labels]  # a perfect embedding: same class, same vector
    result = leave_one_out(vecs, labels, np.arange(len(labels)))
    assert result.map_at[100] == pytest.approx(1.0) and result.recall_at[1] == 1.0
    vecs[0] = np.float32([0, 1, 0])  # one image of class 0 now looks like class 1
    assert leave_one_out(vecs, labels, np.arange(len(labels))).map_at[100] < 1.0
