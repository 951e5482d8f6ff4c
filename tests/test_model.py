import numpy as np
import pytest

from microisp_cli.base_demosaic import base_kernel
from microisp_cli.model import (
    PUBLISHED, ModelConfig, count_parameters, grow_parameters, init_parameters,
)
from microisp_cli.network import MicroISP


def test_published_config_has_13560_parameters():
    assert count_parameters(PUBLISHED) == 13_560


def test_config_parameters_scale_with_features_and_blocks():
    assert count_parameters(ModelConfig(features=8)) > count_parameters(PUBLISHED)
    assert count_parameters(ModelConfig(blocks=1, stages=1)) < count_parameters(PUBLISHED)


def test_config_rejects_unknown_base():
    with pytest.raises(ValueError, match="base"):
        ModelConfig(base="ahd")


def test_min_packed_size_of_published_attention_chain_is_79():
    assert PUBLISHED.min_packed_size == 79


def test_segment_radii_of_published_layout():
    assert [PUBLISHED.segment_radius(i) for i in range(PUBLISHED.num_segments)] == [3, 3, 5, 3, 2]


@pytest.mark.parametrize("kind", ["bilinear", "mhc"])
def test_base_kernel_reproduces_smooth_images(kind):
    """Linear demosaics are exact on a constant image, MHC also on a linear ramp."""
    import tensorflow as tf

    h, w = 12, 14
    yy, xx = np.mgrid[0:2 * h, 0:2 * w].astype(np.float32)
    rgb = np.stack([0.2 + 0 * xx, 0.5 + 0 * xx, 0.8 + 0 * xx], -1)
    if kind == "mhc":
        rgb = rgb + 0.01 * (yy + 2 * xx)[..., None]
    mosaic = np.empty((2 * h, 2 * w), np.float32)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]
    packed = np.stack([mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2]], -1)
    out = tf.nn.conv2d(packed[None], base_kernel(kind), 1, "SAME").numpy()[0]
    full = np.concatenate([tf.nn.depth_to_space(out[None, ..., 4 * c:4 * c + 4], 2).numpy()[0]
                           for c in range(3)], -1)
    core = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(full[core], rgb[core], atol=1e-5)


def test_zero_output_network_returns_its_base_exactly():
    cfg = ModelConfig(base="mhc")
    net = MicroISP(cfg, init_parameters(cfg, seed=1, zero_output=True))
    x = np.random.default_rng(0).random((1, 90, 84, 4), dtype=np.float32)
    y = net(x).numpy()
    ref = MicroISP(ModelConfig(base="bilinear"), init_parameters(ModelConfig(base="bilinear"), 1, True))(x).numpy()
    assert y.shape == (1, 180, 168, 3)
    assert np.abs(y - ref).max() > 1e-3  # MHC differs from bilinear, so the base really is used


def test_random_network_runs_and_depends_on_global_attention():
    cfg = ModelConfig(stages=1, blocks=1)
    net = MicroISP(cfg, init_parameters(cfg, seed=3))
    x = np.random.default_rng(1).random((1, 90, 90, 4), dtype=np.float32)
    y = net(x).numpy()
    x2 = x.copy()
    x2[:, 60:, 60:, :] += 0.5  # far away from the top-left corner
    y2 = net(x2).numpy()
    assert y.shape == (1, 180, 180, 3) and np.isfinite(y).all()
    assert np.abs(y2[:, :8, :8] - y[:, :8, :8]).max() > 0  # only attention can carry this change


def test_grown_network_computes_the_same_and_can_train():
    small = ModelConfig(stages=2, blocks=1, features=3, base="mhc")
    big = ModelConfig(stages=2, blocks=3, features=3, base="mhc")
    params = init_parameters(small, seed=5)
    grown = grow_parameters(params, small, big, seed=6)
    x = np.random.default_rng(2).random((1, 84, 90, 4), dtype=np.float32)
    np.testing.assert_array_equal(MicroISP(big, grown)(x).numpy(), MicroISP(small, params)(x).numpy())
    # the new blocks' zero convs are the only thing holding them at identity: moving one moves the output
    grown["s0.b1.conv5.kernel"] += 0.1
    assert np.abs(MicroISP(big, grown)(x).numpy() - MicroISP(small, params)(x).numpy()).max() > 1e-4
    with pytest.raises(ValueError, match="only add attention blocks"):
        grow_parameters(params, small, ModelConfig(stages=2, blocks=2, features=4, base="mhc"))
    with pytest.raises(ValueError, match="only add attention blocks"):
        grow_parameters(grown, big, small)


def test_public_api_loads_lazily():
    import subprocess
    import sys

    code = ("import sys, microisp_cli as m; assert callable(m.develop) and callable(m.export_tflite); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_folded_attention_is_the_network_with_those_scales():
    """A one-pass network (``attention=False``) made by folding the scales an image gives computes
    what the attention network computes on that image; other scales give another image."""
    from microisp_cli.model import forward_segments
    from microisp_cli.training.fold import fold_attention

    config = ModelConfig(stages=2, blocks=1, features=3, base="lmmse-ri", base_input=True)
    params = init_parameters(config, seed=4)
    x = np.random.default_rng(2).uniform(0.0, 1.0, (1, 90, 96, 4)).astype(np.float32)
    net, scales = MicroISP(config, params), []

    def head(index, samples):
        scales.append(net.head(index, samples).numpy().reshape(-1))
        return net.head(index, samples)

    expected = forward_segments(config, x, net.segment, head).numpy()
    one_pass, folded = fold_attention(config, params, np.stack(scales))
    assert one_pass.num_segments == 1 and not any(".att" in k for k in folded)
    np.testing.assert_allclose(MicroISP(one_pass, folded)(x).numpy(), expected, atol=2e-6)
    _, other = fold_attention(config, params, np.stack(scales) * 0.5)
    assert np.abs(MicroISP(one_pass, other)(x).numpy() - expected).max() > 1e-3
