"""Fine-tuned models in the cache (`$LOOKALIKE_CACHE/models/<name>/model.onnx` +
`manifest.json`, written by `lookalike finetune`), run by `OnnxExtractor` like bundled ones."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import cache_dir
from .onnx_extractor import OnnxExtractor


def models_root() -> Path:
    return cache_dir() / "models"


def model_dir(name: str) -> Path:
    return models_root() / name


def read_manifests() -> dict[str, dict]:
    """name -> manifest of every complete fine-tuned model (the manifest is written last)."""
    root = models_root()
    found: dict[str, dict] = {}
    if not root.is_dir():
        return found
    for manifest_path in sorted(root.glob("*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
            name = manifest["name"]
            int(manifest["resolution"]), int(manifest["dim"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged manifest hides that one model, not every model
        if name == manifest_path.parent.name and (manifest_path.parent / "model.onnx").exists():
            found[name] = manifest
    return found


def describe(manifest: dict) -> str:
    val = manifest.get("metrics", {}).get("val_map_at_100")
    score = f", val mAP@100 {val:.3f}" if isinstance(val, (int, float)) else ""
    return f"fine-tuned {manifest.get('base', '?')} on {manifest.get('data', '?')}, {manifest['resolution']}px{score}"


def finetuned_extractor(manifest: dict) -> OnnxExtractor:
    return OnnxExtractor(manifest["name"], model_dir(manifest["name"]) / "model.onnx",
                         int(manifest["resolution"]), int(manifest["dim"]), labels=None)
