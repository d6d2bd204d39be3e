"""Feature extractors: one protocol (`FeatureExtractor`), a registry by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InvalidQuery
from ..extras import require
from .base import FeatureExtractor, Features, Tags, TrainableExtractor, configure_runtime, for_indexing, l2_normalize


@dataclass(frozen=True)
class ModelInfo:
    name: str
    dim: int
    kind: str  # "bundled", "handcrafted", "fine-tuned"
    description: str
    # Changes whenever the same name would produce different vectors (e.g. a new export
    # graph); libraries record it so old vectors are never mixed with new queries.
    version: str = "1"
    # The leading dimensions that pool the last feature map alone (a multi-layer vector adds
    # earlier stages after them); None: all. Duplicates compare images by these: the added
    # stages make items of one kind alike on purpose, which helps category search, not
    # "is this the same picture".
    head_dim: int | None = None


# name -> (info, factory(state_dir) -> extractor). Later issues register more here.
_REGISTRY: dict[str, tuple[ModelInfo, Callable[[Path | None], FeatureExtractor]]] = {}


def register(info: ModelInfo, factory: Callable[[Path | None], FeatureExtractor]) -> None:
    _REGISTRY[info.name] = (info, factory)


def _effnet_factory(name: str) -> Callable[[Path | None], FeatureExtractor]:
    """The bundled EfficientNets keep no state: the state directory is ignored."""
    def factory(_state: Path | None) -> FeatureExtractor:
        from .effnet import effnet_extractor

        return effnet_extractor(name)
    return factory


def _finetuned_factory(manifest: dict) -> Callable[[Path | None], FeatureExtractor]:
    def factory(_state: Path | None) -> FeatureExtractor:
        from .finetuned import finetuned_extractor

        return finetuned_extractor(manifest)
    return factory


def _register_bundled() -> None:
    from .effnet import EFFNET_SPECS, FEATURE_DIM, describe_pooling

    for spec in EFFNET_SPECS.values():
        register(
            ModelInfo(spec.name, spec.dim, "bundled",
                      f"EfficientNet-{spec.arch.split('-')[-1].capitalize()} ImageNet, {spec.input_size}px, "
                      f"{describe_pooling(spec)}, ONNX Runtime", version=f"export-v{spec.export_version}",
                      head_dim=FEATURE_DIM if spec.extra_stages else None),
            _effnet_factory(spec.name),
        )


_register_bundled()


def _needs(modules: tuple[str, ...], name: str, factory: Callable[[Path | None], FeatureExtractor]
           ) -> Callable[[Path | None], FeatureExtractor]:
    """The factory, after checking the optional packages the extractor uses (the
    `handcrafted` extra), so a missing one fails in one line before any work."""
    def build(state: Path | None) -> FeatureExtractor:
        for module in modules:
            require(module, feature=f"the {name} extractor", extra="handcrafted")
        return factory(state)
    return build


def _register_handcrafted() -> None:
    from .color_hist import ColorHistExtractor
    from .sift_vlad import SiftVladExtractor
    from .texture import TextureExtractor

    register(ModelInfo("color-hist", ColorHistExtractor.dim, "handcrafted",
                       "HSV joint colour histogram (8x3x12 bins), Hellinger-normalised"),
             _needs(("skimage",), "color-hist", lambda _state: ColorHistExtractor()))
    register(ModelInfo("texture", TextureExtractor.dim, "handcrafted",
                       "uniform LBP histograms (whole + 2x2 grid) + HOG, scikit-image"),
             _needs(("skimage",), "texture", lambda _state: TextureExtractor()))
    register(ModelInfo("sift-vlad", SiftVladExtractor.dim, "handcrafted",
                       "OpenCV SIFT (detected + dense) -> VLAD on a 32-word codebook learned per library"),
             _needs(("cv2", "sklearn"), "sift-vlad", lambda state: SiftVladExtractor(state)))


def _register_variants() -> None:
    from .effnet import EFFNET_VARIANTS, FEATURE_DIM, describe_pooling

    for spec in EFFNET_VARIANTS.values():  # measured against the defaults, not a default
        register(ModelInfo(spec.name, spec.dim, "bundled",
                           f"EfficientNet-{spec.arch.split('-')[-1].capitalize()} ImageNet, {spec.input_size}px, "
                           f"{describe_pooling(spec)} (for comparison, see README \"Evaluation\")",
                           version=f"export-v{spec.export_version}", head_dim=FEATURE_DIM if spec.extra_stages else None),
                 _effnet_factory(spec.name))


def _register_ensembles() -> None:
    from .effnet import EFFNET_SPECS, EFFNET_VARIANTS, FEATURE_DIM

    lite0, lite1 = EFFNET_SPECS["effnet-lite0"], EFFNET_VARIANTS["effnet-lite1"]

    def factory(_state: Path | None) -> FeatureExtractor:
        from .effnet import effnet_extractor
        from .ensemble import EnsembleExtractor

        return EnsembleExtractor(ENSEMBLE, effnet_extractor(lite0.name), effnet_extractor(lite1.name))

    register(ModelInfo(ENSEMBLE, lite0.dim + lite1.dim, "bundled",
                       f"EfficientNet-Lite0 ({lite0.input_size}px) and Lite1 ({lite1.input_size}px) ImageNet, GeM each, "
                       "concatenated (cosine = the mean of both), ONNX Runtime",
                       version=f"lite0-v{lite0.export_version}+lite1-v{lite1.export_version}", head_dim=FEATURE_DIM),
             factory)


ENSEMBLE = "effnet-lite0-lite1"
_register_handcrafted()
_register_variants()
_register_ensembles()
def _all_models() -> dict[str, tuple[ModelInfo, Callable[[Path | None], FeatureExtractor]]]:
    """Registered models plus the fine-tuned ones in the cache, read now (the cache can
    change while we run, e.g. `lookalike finetune` in another shell)."""
    from .finetuned import describe, read_manifests

    found = dict(_REGISTRY)
    for name, manifest in read_manifests().items():
        if name not in found or found[name][0].kind == "fine-tuned":  # never shadow a bundled model
            info = ModelInfo(name, int(manifest["dim"]), "fine-tuned", describe(manifest),
                             version=str(manifest.get("date", "1")))  # --overwrite makes a new build
            found[name] = (info, _finetuned_factory(manifest))
    return found


def list_models() -> list[ModelInfo]:
    return [info for info, _ in _all_models().values()]


def model_info(name: str) -> ModelInfo:
    models = _all_models()
    if name not in models:
        known = ", ".join(sorted(models))
        raise InvalidQuery(f"unknown model {name!r} (available: {known})")
    return models[name][0]


def get_extractor(name: str, state_dir: Path | None = None) -> FeatureExtractor:
    """Build the extractor called `name`; `state_dir` holds state learned per library."""
    model_info(name)
    return _all_models()[name][1](state_dir)


__all__ = [
    "FeatureExtractor", "Features", "ModelInfo", "Tags", "TrainableExtractor",
    "configure_runtime", "for_indexing", "get_extractor", "l2_normalize", "list_models", "model_info", "register",
]
