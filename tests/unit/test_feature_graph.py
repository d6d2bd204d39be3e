"""The ONNX builder's stage outputs and multi-layer embedding, the NumPy poolers and the
aspect-preserving resize: a Lite0 graph with seeded random weights at a small input size
(no model weights needed), run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from lookalike.models.onnx_graph import build_effnet_lite, lite_blocks
from lookalike.models.pooling import avg_pool, gem_pool, rmac_pool, rmac_regions
from lookalike.models.preprocess import PAD_GREY, aspect_resize

ARCH = "efficientnet-lite0"
SIZE = 64  # stem /2, stages 2-4 and 6 /2 each: 4x4 after stage 5, 2x2 after stage 7


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    """Every tensor of a Lite0 checkpoint, seeded He-initialised, batch norms near identity."""
    rng = np.random.default_rng(0)
    w: dict[str, np.ndarray] = {}

    def conv(name: str, out: int, per_group: int, k: int) -> None:
        w[f"{name}.weight"] = rng.normal(0, np.sqrt(2 / (per_group * k * k)), (out, per_group, k, k)).astype(np.float32)

    def bn(name: str, c: int) -> None:
        w[f"{name}.weight"] = rng.uniform(0.5, 1.0, c).astype(np.float32)
        w[f"{name}.bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        w[f"{name}.running_mean"] = np.zeros(c, np.float32)
        w[f"{name}.running_var"] = np.ones(c, np.float32)

    conv("_conv_stem", 32, 3, 3)
    bn("_bn0", 32)
    for i, b in enumerate(lite_blocks(ARCH)):
        p, c = f"_blocks.{i}", b.inp * b.expand
        if b.expand != 1:
            conv(f"{p}._expand_conv", c, b.inp, 1)
            bn(f"{p}._bn0", c)
        conv(f"{p}._depthwise_conv", c, 1, b.kernel)
        bn(f"{p}._bn1", c)
        conv(f"{p}._project_conv", b.out, c, 1)
        bn(f"{p}._bn2", b.out)
    conv("_conv_head", 1280, 320, 1)
    bn("_bn1", 1280)
    w["_fc.weight"] = rng.normal(0, 0.01, (1000, 1280)).astype(np.float32)
    w["_fc.bias"] = np.zeros(1000, np.float32)
    return w


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(1)
    smooth = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(a).resize((SIZE, SIZE), Image.Resampling.BILINEAR)) for a in smooth])


def run(model, images: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"images": images})))


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_stage_outputs_have_each_stage_shape(weights, images):
    out = run(build_effnet_lite(ARCH, weights, pooling="gem", with_probs=False, with_feature_map=True,
                                input_size=SIZE, stage_maps=(3, 5, 6, 7)), images)
    assert out["stage3"].shape == (3, 40, 8, 8)
    assert out["stage5"].shape == (3, 112, 4, 4)
    assert out["stage6"].shape == (3, 192, 2, 2)
    assert out["stage7"].shape == (3, 320, 2, 2)
    assert out["feature_map"].shape == (3, 1280, 2, 2)
    assert out["embedding"].shape == (3, 1280)
    # The graph's GeM is models/pooling.py's GeM (the suite's options pool in NumPy).
    np.testing.assert_allclose(out["embedding"], l2(gem_pool(out["feature_map"], 3.0)), atol=1e-5)
    assert out["stage5"].std() > 0 and not np.allclose(out["embedding"][0], out["embedding"][1])


def test_multi_layer_embedding_is_the_weighted_normalised_concatenation(weights, images):
    model = build_effnet_lite(ARCH, weights, pooling="gem", with_feature_map=True, input_size=SIZE,
                              stage_maps=(5,), extra_stages=((5, 0.5),))
    out = run(model, images)
    assert out["embedding"].shape == (3, 1280 + 112)
    np.testing.assert_allclose(np.linalg.norm(out["embedding"], axis=1), 1.0, atol=1e-5)
    expected = l2(np.hstack([l2(gem_pool(out["feature_map"], 3.0)), 0.5 * l2(avg_pool(out["stage5"]))]))
    np.testing.assert_allclose(out["embedding"], expected, atol=1e-5)
    # The head part keeps its share: its norm is 1 / sqrt(1 + 0.5^2) of the whole.
    np.testing.assert_allclose(np.linalg.norm(out["embedding"][:, :1280], axis=1), 1 / np.sqrt(1.25), atol=1e-5)
    # The classifier still reads the average-pooled head only.
    assert out["probs"].shape == (3, 1000)


def test_a_stage_outside_the_table_is_refused(weights):
    with pytest.raises(ValueError, match="stages must be in 1..7"):
        build_effnet_lite(ARCH, weights, input_size=SIZE, extra_stages=((8, 1.0),))


def test_rmac_regions_cover_the_map_at_three_levels():
    regions = rmac_regions(7)
    assert len(regions) == 1 + 4 + 9
    assert regions[0] == (0, 0, 7)
    covered = np.zeros((7, 7), bool)
    for top, left, width in regions[1:5]:  # level 2 alone already covers every cell
        covered[top:top + width, left:left + width] = True
    assert covered.all()


def test_poolers_order_average_gem_max():
    fmap = np.random.default_rng(2).uniform(0, 6, (2, 16, 7, 7)).astype(np.float32)
    avg, gem, top = avg_pool(fmap), gem_pool(fmap, 3.0), gem_pool(fmap, np.inf)
    assert (avg < gem).all() and (gem < top).all()
    np.testing.assert_allclose(gem_pool(fmap, 1.0), avg, rtol=1e-5)
    # A bright spot in one corner: R-MAC's regions that hold it keep it strong.
    spot = np.zeros((1, 4, 7, 7), np.float32)
    spot[0, 0, 0, 0] = 6.0
    spot[0, 1] = 1.0
    assert rmac_pool(spot)[0, 0] > rmac_pool(spot)[0, 2]


@pytest.mark.parametrize("mode", ["squash", "pad", "crop"])
def test_aspect_resize_gives_the_square_input(mode):
    wide = Image.new("RGB", (200, 100), (255, 0, 0))
    out = aspect_resize(wide, 64, mode)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    if mode == "pad":  # 64 x 32 picture centred between grey bars
        assert (out[:16, :, :] == PAD_GREY).all() and (out[16:48] == (255, 0, 0)).all()
    else:
        assert (out == (255, 0, 0)).all()


def test_aspect_resize_crop_keeps_the_centre():
    a = np.zeros((100, 300, 3), np.uint8)
    a[:, 100:200] = 255  # the middle third is white
    out = aspect_resize(Image.fromarray(a), 30, "crop")
    assert out.mean() > 250


def test_unknown_resize_mode_is_refused():
    with pytest.raises(ValueError, match="unknown resize mode"):
        aspect_resize(Image.new("RGB", (20, 10)), 8, "stretch")
