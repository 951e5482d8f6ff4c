"""Training data (synthetic unprocessing, CFA phase, paired loaders) and the training loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from microisp_cli.cli.main import cli
from microisp_cli.colour import cam_to_srgb_from_xyz, srgb_decode
from microisp_cli.training import data
from microisp_cli.training.dng import write_dng


def smooth_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful uint8 (h, w, 3) image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(0.5, 1.5) * x + rng.uniform(0.5, 1.5) * y + rng.uniform()))
                for _ in range(3)]
    return (np.stack(channels, -1) * 255 + 0.5).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    import tensorflow as tf

    tf.io.write_file(str(path), tf.io.encode_png(image))


@pytest.mark.parametrize("cfa", data.CFA_PATTERNS)
def test_training_conditions_like_develop(cfa):
    """Training packs through the develop path (reflect padding to the RGGB phase), and its target
    is padded the same way: every packed site and its target pixel hold the same colour."""
    from microisp_cli.bayer import mosaic_rggb, pack_bayer
    from microisp_cli.weights import Conditioning

    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (6, 8, 3)).astype(np.float32)
    m = mosaic_rggb((rgb * 4000 + 50).astype(np.uint16), cfa)
    packed, padding = data.condition(m, cfa, 50, 4050, (2.0, 1.0, 1.5))
    assert np.array_equal(packed, pack_bayer(m, cfa, 50, 4050, (2.0, 1.0, 1.5), Conditioning()))
    target = data.pad_like(rgb, padding)
    assert target.shape[:2] == (packed.shape[0] * 2, packed.shape[1] * 2)
    for c, (dy, dx, colour, gain) in enumerate([(0, 0, 0, 2.0), (0, 1, 1, 1.0), (1, 0, 1, 1.0), (1, 1, 2, 1.5)]):
        expected = (np.floor(target[dy::2, dx::2, colour] * 4000 + 50) - 50) / 4000 * gain
        np.testing.assert_allclose(packed[..., c], expected, atol=1e-5)


@pytest.mark.parametrize("code", range(8))
def test_augmentation_before_mosaic_keeps_the_cfa(code):
    rng = np.random.default_rng(code)
    photo = data.augment(data.to_float(smooth_photo(40, 40)), code)
    capture = data.Capture("Nikon D90", "GRBG", 12, 0, (0.5, 1.0, 0.7), 1.0, 0.0, 0.0)
    raw, _ = data.unprocess(photo, capture, rng)
    # red sites of a GRBG mosaic hold the red channel of the (augmented) camera image
    to_cam = data.camera_from_srgb(data.camera_matrix("Nikon D90")) * np.array(capture.neutral)[:, None]
    cam = np.einsum("hwc,dc->hwd", srgb_decode(photo), to_cam)
    expected = np.clip(np.round(np.clip(cam[0::2, 1::2, 0], 0, None) * 4095), 0, 4095)
    assert np.array_equal(raw[0::2, 1::2], expected.astype(np.uint16))


@pytest.mark.parametrize("cfa", data.CFA_PATTERNS)
def test_synthetic_pair_colour_round_trip(cfa):
    """A noise-free flat patch: cam_to_srgb(packed) equals the linear target, in every CFA order."""
    photo = np.ones((10, 10, 3), np.float32) * np.array([0.8, 0.4, 0.2], np.float32)
    capture = data.Capture("Canon EOS 550D", cfa, 14, 512, (0.45, 1.0, 0.6), 0.9, 0.0, 0.0)
    packed, target, matrix = data.synthetic_pair(photo, capture, np.random.default_rng(0))
    assert target.shape == (2 * packed.shape[0], 2 * packed.shape[1], 3) and packed.shape[0] >= 4
    cam = np.array([packed[..., 0].mean(), packed[..., 1:3].mean(), packed[..., 3].mean()])
    srgb = data.linear_to_srgb(matrix @ cam)
    np.testing.assert_allclose(srgb, target[0, 0], atol=2e-3)


def test_libraw_agrees_with_the_reference_colour(tmp_path):
    """LibRaw renders a synthetic DNG close to the photo it was made from: the metadata is right."""
    from microisp_cli.peers import libraw_render
    from microisp_cli.training.evaluate import psnr

    photo = data.to_float(smooth_photo(64, 96))
    for i, cfa in enumerate(data.CFA_PATTERNS):
        capture = data.draw_capture(np.random.default_rng(i), data.EVAL_CAMERAS, noisy=False, cfa=cfa)
        raw, target = data.unprocess(photo, capture, np.random.default_rng(i))
        path = write_dng(tmp_path / f"{cfa}.dng", raw, cfa, capture.black, capture.white,
                         data.camera_matrix(capture.camera), capture.neutral)
        out = libraw_render(path, "AHD")
        assert psnr(out[4:-4, 4:-4], target[4:-4, 4:-4]) > 35


def test_patch_sampler_is_deterministic_per_step():
    photos = [smooth_photo(48, 64, s) for s in range(3)]
    sampler = data.PatchSampler(photos, patch=16, batch=3, seed=5)
    a, b = sampler.batch_at(7), sampler.batch_at(7)
    assert a[0].shape == (3, 8, 8, 4) and a[1].shape == (3, 16, 16, 3) and a[2].shape == (3, 3, 3)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], sampler.batch_at(8)[0])


def test_colour_jitter_shuffles_channels_and_raises_saturation():
    photo = data.to_float(smooth_photo(32, 32, 4))
    shuffled = data.colour_jitter(photo, np.random.default_rng(7), max_saturation=1.0)
    matches = [np.allclose(shuffled[..., c], photo[..., perm], atol=2e-6)
               for c in range(3) for perm in range(3)]
    assert sum(matches) == 3                          # each output channel is one input channel
    spread = lambda im: (im - im.mean(-1, keepdims=True)).std()  # noqa: E731
    saturated = data.colour_jitter(photo, np.random.default_rng(7), max_saturation=3.0)
    assert spread(saturated) > 1.2 * spread(photo) and 0.0 <= saturated.min() and saturated.max() <= 1.0
    # without colour jitter the batches stay those of earlier runs (resume and reproducibility)
    photos = [smooth_photo(200, 200, 1)]
    plain = data.PatchSampler(photos, 64, 3, seed=2).batch_at(5)
    for a, b in zip(plain, data.PatchSampler(photos, 64, 3, seed=2, colour_fraction=0.0).batch_at(5)):
        np.testing.assert_array_equal(a, b)
    jittered = data.PatchSampler(photos, 64, 3, seed=2, colour_fraction=1.0).batch_at(5)
    assert np.abs(jittered[1] - plain[1]).max() > 0.05


def test_highlight_patches_are_clipped_at_the_sensor():
    photos = [np.full((120, 120, 3), 200, np.uint8)]                 # 0.58 linear, never clipped
    plain = data.PatchSampler(photos, 64, 4, seed=1).batch_at(0)
    bright = data.PatchSampler(photos, 64, 4, seed=1, highlight_fraction=1.0).batch_at(0)
    assert plain[1].max() < 0.99
    assert bright[1].max() > 0.9999 and plain[0][..., 1].max() < 1.0  # targets reach white ...
    assert (bright[0][..., 1] == 1.0).mean() > 0.2                     # ... where green sites clip


def test_split_keeps_held_out_photos_apart(tmp_path):
    for sub, n in (("urban100", 25), ("bsd100", 3), ("mcmaster", 2)):
        (tmp_path / sub).mkdir()
        for i in range(n):
            (tmp_path / sub / f"img_{i:03d}.png").write_bytes(b"")
    train, held = data.split_photos(tmp_path)
    assert len(held) == 22 and len(train) == 8
    assert not set(train) & set(held)


def test_zurich_layout(tmp_path):
    (tmp_path / "huawei_raw").mkdir()
    (tmp_path / "canon").mkdir()
    import tensorflow as tf

    raw = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16, 1) % 1024
    tf.io.write_file(str(tmp_path / "huawei_raw" / "7.png"), tf.io.encode_png(raw))
    write_png(tmp_path / "canon" / "7.png", smooth_photo(16, 16))
    write_png(tmp_path / "canon" / "8.png", smooth_photo(16, 16))      # no raw: ignored
    pairs = data.zurich_pairs(tmp_path)
    assert [p.raw.stem for p in pairs] == ["7"]
    packed, target = data.load_zurich_pair(pairs[0])
    assert packed.shape == (8, 8, 4) and target.shape == (16, 16, 3)
    np.testing.assert_allclose(packed[..., 0], raw[0::2, 0::2, 0] / 1023.0, rtol=1e-6)


def test_raw_folder_pairs(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "rgb").mkdir()
    samples = (600 + np.arange(64 * 80).reshape(64, 80) % 7).astype(np.uint16)
    write_dng(tmp_path / "raw" / "a.dng", samples, "GBRG", 100, 4095, data.camera_matrix("Nikon D700"),
              (0.5, 1.0, 0.8))
    write_png(tmp_path / "rgb" / "a.png", smooth_photo(64, 80))
    pairs = data.raw_folder_pairs(tmp_path / "raw", tmp_path / "rgb")
    packed, target, mosaic = data.load_raw_pair(pairs[0])
    assert mosaic.cfa == "GBRG"
    # GBRG: red on odd rows, even columns; one row reflect-padded above and one below, as develop does
    assert packed.shape == (33, 40, 4) and target.shape == (66, 80, 3)
    red, blue = samples[[1, *range(1, 64, 2)], 0::2], samples[[*range(0, 64, 2), 62], 1::2]
    np.testing.assert_allclose(packed[..., 0], (red - 100.0) / 3995 * 2.0, rtol=1e-4)
    np.testing.assert_allclose(packed[..., 3], (blue - 100.0) / 3995 * 1.25, rtol=1e-4)
    np.testing.assert_allclose(mosaic.cam_to_srgb,
                               cam_to_srgb_from_xyz(data.camera_matrix("Nikon D700")), atol=1e-3)


# --- the training loop ---------------------------------------------------------------------
TINY = dict(stages=1, blocks=0, features=2, attention_hidden=2, base="mhc", batch=2, patch=16,
            warmup=1, lr=1e-2, checkpoint_every=2)


@pytest.mark.slow
def test_checkpoint_resume_continues_exactly(tmp_path):
    from microisp_cli.training.train import TrainConfig, Trainer

    photos = [smooth_photo(40, 48, s) for s in range(2)]
    config = TrainConfig(steps=4, **TINY)
    straight = Trainer(config, tmp_path / "a", photos)
    straight.save()
    first = straight.run()
    assert first["step"] == 4 and np.isfinite(first["loss"])

    interrupted = Trainer(config, tmp_path / "b", photos)
    interrupted.run(steps=2)
    resumed = Trainer(config, tmp_path / "b", photos)
    assert resumed.restore() == 2
    assert resumed.run()["step"] == 4
    for name, value in straight.params.items():
        np.testing.assert_allclose(resumed.params[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-7)


def test_training_can_start_from_weights_with_more_blocks(tmp_path):
    from microisp_cli.model import ModelConfig, init_parameters
    from microisp_cli.training.train import TrainConfig, Trainer
    from microisp_cli.weights import Conditioning, Weights, save_weights

    small = ModelConfig(stages=1, blocks=1, features=2, attention_hidden=2, base="mhc")
    start = init_parameters(small, seed=9)
    save_weights(Weights(name="start", config=small, params=start, conditioning=Conditioning()), tmp_path / "start")
    config = TrainConfig(steps=1, **{**TINY, "blocks": 2, "patch": 160}, init=str(tmp_path / "start.json"))
    trainer = Trainer(config, tmp_path / "run", [smooth_photo(170, 170, s) for s in range(2)])
    np.testing.assert_array_equal(trainer.params["s0.b0.conv6.kernel"].numpy(), start["s0.b0.conv3.kernel"])
    np.testing.assert_array_equal(trainer.params["s0.b2.att0.conv1.kernel"].numpy(), start["s0.b2.att0.conv1.kernel"])
    with pytest.raises(ValueError, match="start.json"):
        Trainer(TrainConfig(steps=1, **{**TINY, "features": 3}, init=str(tmp_path / "start.json")), tmp_path / "r2")
    trainer.save()
    for f in tmp_path.glob("start.*"):                 # a resumed run needs its checkpoint, not --init
        f.unlink()
    assert Trainer(config, tmp_path / "run", [smooth_photo(170, 170, 0)]).restore() == 0


@pytest.mark.slow
def test_cli_train_resume_export_and_eval(tmp_path):
    photos = tmp_path / "photos" / "bsd100"
    photos.mkdir(parents=True)
    for s in range(3):
        write_png(photos / f"img_{s:03d}.png", smooth_photo(40, 48, s))
    run = tmp_path / "run"
    args = ["train", str(run), "--photos", str(tmp_path / "photos"), "--steps", "2", "--no-progress",
            "--stages", "1", "--blocks", "0", "--features", "2", "--attention-hidden", "2",
            "--batch", "2", "--patch", "16", "--checkpoint-every", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (run / "ckpt" / "ckpt-2.index").exists()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "--resume" in again.output
    weights = tmp_path / "w.json"
    result = CliRunner().invoke(cli, ["train", str(run), "--resume", "--steps", "3",   # rich progress bar
                                      "--export", str(weights)])
    assert result.exit_code == 0, result.output
    assert (run / "ckpt" / "ckpt-3.index").exists()
    manifest = json.loads(weights.read_text())
    assert manifest["training"]["checkpoint"] == "ckpt-3"

    # eval on two tiny synthetic DNGs (made from the held-out split of another folder)
    held = tmp_path / "held"
    held.mkdir()
    for s in range(3):
        write_png(held / f"p{s}.png", smooth_photo(36, 44, 10 + s))
    from microisp_cli.training.evaluate import make_synthetic_set

    make_synthetic_set(sorted(held.iterdir()), tmp_path / "set")
    table = tmp_path / "eval.json"
    result = CliRunner().invoke(cli, ["eval", "--weights", str(weights), "--set", str(tmp_path / "set"),
                                      "--peers", "libraw ahd", "--per-file", "--json", str(table)])
    assert result.exit_code == 0, result.output
    assert "LibRaw AHD" in result.output and "microisp" in result.output
    scores = json.loads(table.read_text())
    # three photos: one DNG each, plus a smooth frame of the first and a saturated one of the second
    assert sorted(g for r in scores["rows"] for g in r["groups"] if g.startswith("kind")) == \
        ["kind: photo", "kind: photo", "kind: photo", "kind: saturated", "kind: smooth"]
    assert set(scores["mean"]) == {"microisp", "LibRaw AHD"}
    assert scores["mean"]["LibRaw AHD"]["psnr"] > 25
    assert {"clean", "noisy"} <= set(scores["groups"])
    assert "microisp - LibRaw AHD" in result.output and "clean" in result.output
    # the ordinary frames, without the saturated one, reported beside the whole set
    unsaturated = [r for r in scores["rows"] if "without saturated" in r["groups"]]
    assert len(unsaturated) == 4 and all("kind: saturated" not in r["groups"] for r in unsaturated)
    assert scores["groups"]["without saturated"]["microisp"]["psnr"] == pytest.approx(
        np.mean([r["microisp psnr"] for r in unsaturated]))
    assert "without saturated: best yardstick LibRaw AHD" in result.output


def test_cli_eval_rejects_unknown_peer(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "--set", str(tmp_path), "--peers", "LibRaw XYZ"])
    assert result.exit_code == 2 and "LibRaw XYZ" in result.output


def test_cli_eval_on_a_paired_folder(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "rgb").mkdir()
    photo = data.to_float(smooth_photo(64, 80, 3))
    capture = data.Capture("Sony ILCE-7", "BGGR", 12, 64, (0.5, 1.0, 0.7), 0.9, 0.0, 0.0)
    raw, target = data.unprocess(photo, capture, np.random.default_rng(0))
    write_dng(tmp_path / "raw" / "x.dng", raw, "BGGR", 64, 4095, data.camera_matrix("Sony ILCE-7"), capture.neutral)
    write_png(tmp_path / "rgb" / "x.png", (target * 255 + 0.5).astype(np.uint8))
    result = CliRunner().invoke(cli, ["eval", "--weights", "default", "--raw-dir", str(tmp_path / "raw"),
                                      "--target-dir", str(tmp_path / "rgb"), "--peers", "LibRaw AHD", "--no-ssim",
                                      "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "e.json").read_text())["mean"]
    assert scores["microisp"]["psnr"] > 30 and scores["LibRaw AHD"]["psnr"] > 30


def test_loss_pulls_outputs_back_into_range():
    """Below 0 (and above 1 where the target is not clipped) the loss still has a gradient: a plain
    clip has none, and the network learnt to leave dark, saturated tones below 0 (a colour bias)."""
    import tensorflow as tf

    from microisp_cli.colour import srgb_encode
    from microisp_cli.training.train import render_for_loss

    x = np.array([-0.05, 0.2, 1.1, 1.1], np.float32).reshape(1, 1, 4, 1) * np.ones((1, 1, 1, 3), np.float32)
    target = np.array([0.1, 0.5, 0.9, 1.0], np.float32).reshape(1, 1, 4, 1) * np.ones((1, 1, 1, 3), np.float32)
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = render_for_loss(v, tf.eye(3)[None], tf.constant(target))
        loss = tf.reduce_sum(tf.square(out - target))
    grad = tape.gradient(loss, v).numpy()[0, 0, :, 0]
    assert grad[0] < 0 and grad[2] > 0        # below 0: pushed up; over 1 with target 0.9: pushed down
    assert grad[3] == 0                        # over 1 where the target is clipped: free
    np.testing.assert_allclose(out.numpy()[0, 0, 1], srgb_encode(np.float32(0.2)), rtol=1e-6)
