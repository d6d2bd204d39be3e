"""Fine-tuned network -> ONNX + manifest in the model cache, checked against PyTorch."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..models.effnet import export_onnx
from ..models.finetuned import model_dir
from .network import EmbeddingNet, UInt8Input, embed_inputs


def export_finetuned(model: EmbeddingNet, manifest: dict, check_inputs: np.ndarray) -> Path:
    """Write models/<name>/model.onnx, verify it reproduces the PyTorch embeddings on
    `check_inputs`, then write manifest.json last (its presence marks a complete model)."""
    import onnxruntime as ort

    directory = model_dir(manifest["name"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").unlink(missing_ok=True)
    model = model.cpu().eval()
    path = export_onnx(UInt8Input(model).eval(), directory / "model.onnx", manifest["resolution"], with_probs=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["embedding"], {"images": np.ascontiguousarray(check_inputs)})[0]
    with torch.no_grad():
        want = embed_inputs(model, check_inputs)
    manifest = {**manifest, "onnx_max_abs_diff": float(np.abs(got - want).max())}
    fd, tmp = tempfile.mkstemp(suffix=".json.tmp", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, directory / "manifest.json")
    return path
