"""TFLite export: every precision and shape converts, passes the op audit read back from the file,
matches TensorFlow within its threshold under LiteRT (XNNPACK), and runs the exact tiled pipeline.

Small configs keep this fast; one test exports the bundled default weights at the published shape.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED
from microisp_cli import export
from microisp_cli.model import ModelConfig, init_parameters
from microisp_cli.runtimes.litert import LiteRTRunner, ModelFileError
from microisp_cli.tflite_format import model_ops, read_metadata
from microisp_cli.weights import Conditioning, Weights, load_weights, save_weights

CONFIG = ModelConfig(stages=1, blocks=2, base="mhc")
TILE = 200  # full-resolution pixels of the fixed-shape variant (packed 100 >= 79)


@pytest.fixture(scope="module")
def weights() -> Weights:
    return Weights("tiny", CONFIG, init_parameters(CONFIG, seed=1), Conditioning())


def _calibration_sources():
    raw = SHARED / "data" / "raw"
    return [raw] if raw.exists() else []


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
    """(precision, kind) -> ExportResult for the tiny network."""
    out = tmp_path_factory.mktemp("export")
    calibration = export.calibration_set(weights.conditioning, _calibration_sources(),
                                         synthetic=6)
    results = {}
    for precision in export.PRECISIONS:
        for kind, options in (("segments", {}), ("fixed", {"tile_size": TILE})):
            results[precision, kind] = export.export_tflite(
                weights, out / f"{precision}-{kind}.tflite", precision=precision,
                calibration=calibration if precision == "int8" else None, **options)
    return results


VARIANTS = [(p, k) for p in export.PRECISIONS for k in ("segments", "fixed")]


@pytest.mark.slow
@pytest.mark.parametrize("precision,kind", VARIANTS)
def test_op_audit_read_from_the_file(exported, precision, kind):
    result = exported[precision, kind]
    ops = set(model_ops(result.path))
    assert ops == set(result.ops)
    allowed = export.ALLOWED_OPS | (export.QUANT_OPS if precision != "fp32" else set())
    assert ops <= allowed, ops - allowed
    assert "PRELU" in ops and "CONV_2D" in ops
    assert not ops & {"RELU", "NEG", "SUB", "STRIDED_SLICE", "GATHER"}
    if precision == "int8":
        assert "QUANTIZE" in ops


def test_audit_names_the_op_outside_the_set():
    with pytest.raises(export.ExportError, match="STRIDED_SLICE"):
        export.audit_ops(["CONV_2D", "STRIDED_SLICE", "PRELU"])
    with pytest.raises(export.ExportError, match="DEQUANTIZE"):
        export.audit_ops(["CONV_2D", "DEQUANTIZE"], "fp32")
    export.audit_ops(["CONV_2D", "DEQUANTIZE"], "fp16")


@pytest.mark.slow
def test_metadata_and_shapes(exported):
    seg, fixed = exported["fp32", "segments"], exported["fp32", "fixed"]
    meta = read_metadata(seg.path)
    assert meta["kind"] == "segments" and ModelConfig.from_dict(meta["model"]) == CONFIG
    assert set(seg.inputs) == {"segment_0", "segment_1", "segment_2", "head_0", "head_1"}
    assert seg.inputs["segment_0"]["x"] == (1, -1, -1, 4)
    assert seg.outputs["segment_2"]["rgb"] == (1, -1, -1, 3)
    assert fixed.inputs["serving_default"]["x"] == (1, TILE // 2, TILE // 2, 4)
    assert fixed.outputs["serving_default"]["rgb"] == (1, TILE, TILE, 3)
    assert read_metadata(fixed.path)["input"] == [1, TILE // 2, TILE // 2, 4]
    with pytest.raises(ModelFileError, match="fixed-shape"):
        LiteRTRunner(fixed.path)


def _input(shape, seed=7):
    return export.check_input(CONFIG, Conditioning(), shape, seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["segments", "fixed"])
def test_accuracy_against_tensorflow(weights, exported, kind):
    """FP32 within 1e-5 of TensorFlow; FP16 >= 45 dB and INT8 >= 35 dB against FP32."""
    x = _input((TILE // 2, TILE // 2))
    ref = np.clip(weights.build()(x[None]).numpy()[0], 0, 1)
    got = {p: np.clip(export.run_tflite(exported[p, kind].path, x, threads=2), 0, 1)
           for p in export.PRECISIONS}
    assert np.abs(got["fp32"] - ref).max() <= 1e-5
    assert export.psnr(got["fp32"], got["fp16"]) >= 45.0
    assert export.psnr(got["fp32"], got["int8"]) >= 35.0
    assert export.psnr(got["fp32"], got["int8"]) < 100.0  # really quantized
    acc = exported["fp32", kind].accuracy  # the check export_tflite ran itself
    assert acc is not None and acc.max_abs <= 1e-5


@pytest.mark.parametrize("tile_size,attention,xnnpack", [(96, "exact", True), (64, "exact", False),
                                                         (96, "tile", True)])
@pytest.mark.slow
def test_litert_tiled_equals_tensorflow_tiled(weights, exported, tile_size, attention, xnnpack):
    from microisp_cli.runtimes.tensorflow import TensorFlowRunner
    from microisp_cli.tiling import run_array

    x = _input((131, 118), seed=3)  # odd, not a multiple of the tile
    tf_out = run_array(TensorFlowRunner(weights.config, weights.params), x, tile_size=tile_size,
                       attention=attention)
    lite = LiteRTRunner(exported["fp32", "segments"].path, threads=2, xnnpack=xnnpack)
    lite_out = run_array(lite, x, tile_size=tile_size, attention=attention)
    assert lite_out.shape == (262, 236, 3)
    assert np.abs(lite_out - tf_out).max() <= 1e-5 < 1 / 255
    if attention == "exact":
        whole = weights.build()(x[None]).numpy()[0]
        assert np.abs(lite_out - whole).max() <= 1e-4


def test_calibration_set_is_real_and_synthetic_data():
    sources = _calibration_sources()
    samples = export.calibration_set(Conditioning(), sources, size=96, synthetic=2)
    assert len(samples) >= 2 + (2 if sources else 0)
    for s in samples:
        assert s.shape == (96, 96, 4) and s.dtype == np.float32
        assert 0.0 <= s.min() and s.max() <= 1.0 and s.std() > 0.01  # a scene, not a constant


def test_fixed_input_shape():
    assert export.fixed_input_shape("12mp") == (1500, 2000)
    assert export.fixed_input_shape("fullhd") == (540, 960)
    assert export.fixed_input_shape(None, 512) == (256, 256)
    assert export.fixed_input_shape() is None
    with pytest.raises(export.ExportError):
        export.fixed_input_shape("12mp", 512)


@pytest.mark.slow
def test_published_topology_at_the_published_shape_fits_its_size(tmp_path):
    """FP32, 1x1500x2000x4 input like the published file, no larger than its 159 KB (the ``mhc``
    preset has the published topology, 13,560 parameters, plus the fixed base)."""
    result = export.export_tflite(load_weights("mhc"), tmp_path / "m.tflite", resolution="12mp")
    assert result.kind == "fixed" and result.accuracy is None  # 12 MP is not checked by default
    assert result.inputs["serving_default"]["x"] == (1, 1500, 2000, 4)
    assert result.outputs["serving_default"]["rgb"] == (1, 3000, 4000, 3)
    assert result.size_bytes <= 159 * 1024
    assert set(result.ops) <= export.ALLOWED_OPS


@pytest.mark.slow
def test_network_without_attention_is_one_segment(tmp_path):
    cfg = ModelConfig(stages=1, blocks=0, base="bilinear")
    flat = Weights("flat", cfg, init_parameters(cfg, seed=2), Conditioning())
    result = export.export_tflite(flat, tmp_path / "flat.tflite")
    assert set(result.inputs) == {"segment_0"} and set(result.outputs["segment_0"]) == {"rgb"}
    assert result.accuracy is not None and result.accuracy.max_abs <= 1e-5


def test_too_small_fixed_shape_is_refused(weights, tmp_path):
    with pytest.raises(export.ExportError, match="too small"):
        export.export_tflite(weights, tmp_path / "m.tflite", tile_size=100)
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.slow
def test_cli_export_prints_what_it_wrote(weights, tmp_path):
    from microisp_cli.cli.main import cli

    manifest = save_weights(weights, tmp_path / "tiny")
    out = tmp_path / "tiny.tflite"
    result = CliRunner().invoke(cli, ["export", "--tflite", "--fp16", "--weights", str(manifest),
                                      "--tile-size", "160", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists() and "precision  fp16" in result.output
    assert "1x80x80x4" in result.output and "1x160x160x3" in result.output
    assert "KB" in result.output and "PRELU" in result.output and "PSNR" in result.output


@pytest.mark.parametrize("args,message", [
    (["--resolution", "12mq"], "not a resolution"),
    (["--resolution", "12mp", "--tile-size", "512"], "not both"),
    (["--tile-size", "100"], "too small"),
    (["--weights", "no-such-weights"], "unknown weights"),
])
def test_cli_export_bad_input(weights, tmp_path, args, message):
    from microisp_cli.cli.main import cli

    manifest = save_weights(weights, tmp_path / "tiny")
    base = ["export", "--tflite", "--weights", str(manifest), "-o", str(tmp_path / "m.tflite")]
    result = CliRunner().invoke(cli, base + args)
    assert result.exit_code != 0
    assert message in result.output


def _dng(path):
    from microisp_cli.training.dng import write_dng

    from microisp_cli.bayer import mosaic_rggb
    from microisp_cli.synthetic import synthetic_scene

    scene = synthetic_scene(300, seed=11)[:260, :300]  # linear RGB, 300x260 pixels
    mosaic = mosaic_rggb(scene.astype(np.float64))
    return write_dng(path, np.round(mosaic * 4000 + 64).astype(np.uint16), "RGGB",
                     black_level=64, white_level=4095)


@pytest.mark.slow
def test_develop_with_the_tflite_backend_gives_the_tensorflow_photo(weights, exported, tmp_path):
    from microisp_cli.develop import develop, make_runner

    dng = _dng(tmp_path / "scene.dng")
    model = exported["fp32", "segments"].path
    tf_photo = develop(dng, weights, runner=make_runner(weights, "tf"), bits=16, tile_size=128)
    lite_photo = develop(dng, weights, runner=make_runner(weights, "tflite", model=model),
                         bits=16, tile_size=128)
    assert lite_photo.shape == tf_photo.shape == (260, 300, 3)
    assert np.abs(lite_photo.astype(int) - tf_photo.astype(int)).max() <= 65535 // 255


@pytest.mark.slow
def test_cli_develop_backend_tflite(weights, exported, tmp_path):
    from microisp_cli.cli.main import cli

    dng = _dng(tmp_path / "scene.dng")
    manifest = save_weights(weights, tmp_path / "tiny")
    model = str(exported["fp32", "segments"].path)
    run = CliRunner().invoke(cli, ["develop", str(dng), "-o", str(tmp_path / "out.png"), "--weights",
                                   str(manifest), "--backend", "tflite", "--model", model,
                                   "--tile-size", "128"])
    assert run.exit_code == 0, run.output
    assert (tmp_path / "out.png").stat().st_size > 0
    # a file exported from other weights (here: the upstream conditioning) is refused
    other = Weights("other", CONFIG, weights.params,
                    Conditioning(channels=("B", "Gr", "R", "Gb")))
    run = CliRunner().invoke(cli, ["develop", str(dng), "-o", str(tmp_path / "o2.png"), "--weights",
                                   str(save_weights(other, tmp_path / "other")), "--backend",
                                   "tflite", "--model", model])
    assert run.exit_code != 0 and "--weights" in run.output
    run = CliRunner().invoke(cli, ["develop", str(dng), "-o", str(tmp_path / "o3.png"),
                                   "--backend", "tflite"])
    assert run.exit_code != 0 and "--model" in run.output


@pytest.mark.slow
def test_jpeg_develop_on_litert_never_imports_tensorflow(weights, exported, tmp_path):
    """The whole CLI develop of a JPEG on the LiteRT backend, in a fresh interpreter."""
    import subprocess
    import sys

    dng = _dng(tmp_path / "scene.dng")
    manifest = save_weights(weights, tmp_path / "tiny")
    args = ["develop", str(dng), "-o", str(tmp_path / "out.jpg"), "--weights", str(manifest),
            "--backend", "tflite", "--model", str(exported["fp32", "segments"].path)]
    code = ("import sys; from microisp_cli.cli.main import cli\n"
            f"try: cli({args!r})\n"
            "except SystemExit as exc: assert exc.code == 0, exc.code\n"
            "sys.exit(3 if 'tensorflow' in sys.modules else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "out.jpg").read_bytes()[:2] == b"\xff\xd8"
