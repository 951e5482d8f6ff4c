"""microisp bench: resolution parsing, statistics, memory measurement and the command itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from microisp_cli import bench, synthetic
from microisp_cli.cli.main import cli
from microisp_cli.resolution import NAMED, Resolution, parse_resolution


# --- resolutions ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, size", [
    ("fullhd", (1920, 1080)), ("12MP", (4000, 3000)), (" 32mp ", NAMED["32mp"]),
    ("256x192", (256, 192)), ("640X480", (640, 480)), ("6000*4000", (6000, 4000)),
])
def test_parse_resolution(text, size):
    res = parse_resolution(text)
    assert (res.width, res.height) == size
    assert res.packed_shape == (size[1] // 2, size[0] // 2)


def test_resolution_labels():
    assert parse_resolution("12mp").label == "12mp"
    assert parse_resolution("256x192").label == "256x192"
    assert parse_resolution("12mp").megapixels == pytest.approx(12.0)


@pytest.mark.parametrize("text, message", [
    ("12mb", "not a resolution"), ("", "not a resolution"), ("640x", "not a resolution"),
    ("255x192", "must be even"), ("0x0", "between 2 and"), ("100000x2", "between 2 and"),
])
def test_parse_resolution_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_resolution(text)


def test_named_resolutions_are_even():
    for width, height in NAMED.values():
        assert width % 2 == 0 and height % 2 == 0


# --- library pieces --------------------------------------------------------------------------
def test_summarise():
    stats = bench.summarise([0.4, 0.1, 0.2, 0.3, 1.0])
    assert stats == pytest.approx({"median_s": 0.3, "p90_s": 0.76, "min_s": 0.1, "max_s": 1.0})


def test_synthetic_packed_is_deterministic_and_in_range():
    res = Resolution(64, 48)
    a, b = synthetic.synthetic_packed(res), synthetic.synthetic_packed(res)
    assert a.shape == (24, 32, 4) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() < 1.0


def test_rss_sampler_sees_an_allocation():
    before = bench.read_status_mb("VmRSS")
    with bench.RssSampler(interval=0.001) as sampler:
        block = np.ones(200 * 1024 * 1024 // 8)  # 200 MiB, touched
        import time
        time.sleep(0.05)
        del block
    assert sampler.samples > 0
    assert sampler.peak_mb > before + 150


def test_reset_peak_rss_lowers_the_high_water_mark():
    block = np.ones(200 * 1024 * 1024 // 8)
    del block
    if not bench.reset_peak_rss():
        pytest.skip("/proc/self/clear_refs not writable here")
    assert bench.read_status_mb("VmHWM") < bench.read_status_mb("VmRSS") + 100


def test_config_validation():
    res = Resolution(256, 192)
    with pytest.raises(bench.BenchError, match="tf backend runs fp32"):
        bench.BenchConfig(res, backend="tf", precision="int8")
    with pytest.raises(bench.BenchError, match="runs >= 1"):
        bench.BenchConfig(res, runs=0)
    config = bench.BenchConfig(res, backend="tflite", precision="int8", tile_size=0)
    assert bench.BenchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    named = bench.BenchConfig(parse_resolution("12mp"))
    assert bench.BenchConfig.from_dict(named.to_dict()) == named


def test_plan_adds_the_whole_frame_by_default():
    configs = bench.plan([parse_resolution("fullhd")], runs=1, warmup=0)
    assert [c.tile_size for c in configs] == [None, 0]  # the network's default tiles, the whole frame
    configs = bench.plan([parse_resolution("fullhd")], [512, 512, 0])
    assert [c.tile_size for c in configs] == [512, 0]


def test_whole_frame_too_large_is_skipped_without_running():
    config = bench.BenchConfig(Resolution(60000, 60000), tile_size=0)
    [result] = bench.run_benchmarks([config])
    assert result.skipped and "GiB" in result.skipped and not result.ok


def test_tiling_costs_pair_tiled_with_whole_frame():
    res = Resolution(256, 192)
    whole = bench.BenchResult(bench.BenchConfig(res, tile_size=0), median_s=1.0, peak_rss_mb=800.0)
    tiled = bench.BenchResult(bench.BenchConfig(res, tile_size=128), median_s=1.1, peak_rss_mb=600.0)
    other = bench.BenchResult(bench.BenchConfig(Resolution(512, 512), tile_size=128), median_s=3.0)
    [row] = bench.tiling_costs([whole, tiled, other])
    assert row["time_ratio"] == pytest.approx(1.1)
    assert row["peak_rss_ratio"] == pytest.approx(0.75)


def test_machine_info_names_the_cpu_and_versions():
    info = bench.machine_info()
    assert info["cpu"] and info["logical_cpus"] >= 1
    assert info["tensorflow"] and info["microisp"]


# --- the command -------------------------------------------------------------------------------
def test_bench_bad_resolution_exits_2_with_a_clear_message():
    result = CliRunner().invoke(cli, ["bench", "--resolution", "12mb"])
    assert result.exit_code == 2
    assert "'12mb' is not a resolution" in result.output
    assert "fullhd, 12mp, 32mp or WIDTHxHEIGHT" in result.output
    result = CliRunner().invoke(cli, ["bench", "-r", "257x192"])
    assert result.exit_code == 2 and "must be even" in result.output


def test_bench_rejects_int8_on_tensorflow():
    result = CliRunner().invoke(cli, ["bench", "-r", "256x192", "--precision", "int8"])
    assert result.exit_code == 2 and "tflite" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "tf"])
def test_bench_runs_and_writes_json(tmp_path, backend):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--resolution", "256x192", "--tile-size", "0",
                                      "--runs", "2", "--warmup", "1", "--json", str(out),
                                      "--backend", backend])
    assert result.exit_code == 0, result.output
    assert "256x192" in result.output and "median" in result.output
    report = json.loads(out.read_text())
    assert report["format"] == "microisp-bench/1"
    for key in ("cpu", "usable_cpus", "openvino", "tensorflow", "ai_edge_litert", "microisp"):
        assert report["machine"][key]
    [r] = report["results"]
    assert r["error"] is None and r["skipped"] is None
    assert r["config"]["resolution"] == {"name": "256x192", "width": 256, "height": 192,
                                         "megapixels": 0.049}
    assert r["config"]["tile_size"] == 0 and r["config"]["backend"] == backend
    assert len(r["runs_s"]) == 2
    for key in ("import_s", "init_s", "start_to_ready_s", "first_run_s", "median_s", "p90_s", "cpu_median_s",
                "min_s", "max_s", "mp_per_s", "idle_rss_mb", "peak_rss_mb", "process_peak_rss_mb",
                "cpu_s_per_mp"):
        assert r[key] > 0, key
    assert r["min_s"] <= r["median_s"] <= r["p90_s"] <= r["max_s"]
    assert r["mp_per_s"] == pytest.approx(256 * 192 / 1e6 / r["median_s"])
    assert r["peak_rss_mb"] >= r["idle_rss_mb"] - 1
    assert r["memory_method"]
    assert r["macs_per_pixel"] == pytest.approx(6066.7, abs=0.1)  # the default weights
    if r["fp32_peak_percent"] is not None:  # a CPU whose clock /proc/cpuinfo reports
        assert 0 < r["fp32_peak_percent"] < 100
        # INT8 peaks at 2x (4x with VNNI) the FP32 rate: the same MACs are a smaller share of it
        assert r["int8_peak_percent"] in (pytest.approx(r["fp32_peak_percent"] / 2),
                                          pytest.approx(r["fp32_peak_percent"] / 4))
    assert "CPU-s/MP" in result.output and "% FP32 peak" in result.output


def test_macs_per_pixel_of_the_default_and_published_networks():
    """6,067 MAC per output pixel for the default weights (740 of them in the residual-interpolation
    base, 567 in the convolutions that read it), 5,519 for the former default (the LMMSE base, 192),
    6,201 for the MHC default of issue 16 (features 8 over MHC); 1,739 for the published layout
    (no base demosaic)."""
    from microisp_cli.model import PUBLISHED, ModelConfig, macs_per_pixel
    from microisp_cli.weights import load_weights

    assert macs_per_pixel(load_weights().config) == pytest.approx(6066.7, abs=0.1)
    assert macs_per_pixel(load_weights("lmmse").config) == pytest.approx(5518.7, abs=0.1)
    assert macs_per_pixel(ModelConfig(features=8, base="mhc")) == pytest.approx(6201.3, abs=0.1)
    assert macs_per_pixel(PUBLISHED) == pytest.approx(1739.3, abs=0.1)


def test_synthetic_mosaic_is_a_12_bit_rggb_frame():
    mosaic = synthetic.synthetic_mosaic(Resolution(64, 48))
    assert mosaic.shape == (48, 64) and mosaic.dtype == np.uint16
    assert synthetic.SYNTHETIC_BLACK <= mosaic.min() and mosaic.max() <= synthetic.SYNTHETIC_WHITE
    packed = synthetic.synthetic_packed(Resolution(64, 48))
    expected = (mosaic[0::2, 1::2] - synthetic.SYNTHETIC_BLACK) / (synthetic.SYNTHETIC_WHITE - synthetic.SYNTHETIC_BLACK)
    assert np.allclose(packed[..., 1], expected, atol=1e-6)


def test_bench_input_reports_the_stages(tmp_path):
    from microisp_cli.training.dng import write_dng

    dng = write_dng(tmp_path / "frame.dng", synthetic.synthetic_mosaic(Resolution(320, 240)),
                    black_level=synthetic.SYNTHETIC_BLACK, white_level=synthetic.SYNTHETIC_WHITE)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--input", str(dng), "--tile-size", "0",
                                      "--runs", "1", "--warmup", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    [r] = json.loads(out.read_text())["results"]
    assert r["error"] is None
    assert (r["config"]["resolution"]["width"], r["config"]["resolution"]["height"]) == (320, 240)
    assert set(r["stages"]) == {"decode", "pack", "model", "render", "encode"}
    assert sum(s["median_s"] for s in r["stages"].values()) == pytest.approx(r["median_s"], rel=0.05)


def test_bench_input_and_resolution_do_not_mix(tmp_path):
    raw = tmp_path / "x.dng"
    raw.write_bytes(b"0")
    result = CliRunner().invoke(cli, ["bench", "--input", str(raw), "-r", "12mp"])
    assert result.exit_code == 2 and "--input sets the frame size" in result.output


def _make_benchmarks_md():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "make_benchmarks_md.py"
    spec = importlib.util.spec_from_file_location("make_benchmarks_md", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmarks_section_rewrites_only_between_its_markers(tmp_path):
    script = _make_benchmarks_md()
    doc = tmp_path / "docs" / "benchmarks.md"
    body = f"{script.START}\nfirst\n{script.END}\n"
    script.write_section(doc, body)
    assert doc.read_text() == f"# Benchmarks\n\n{script.HEADING}\n\n{body}"
    other = "## Tiling: memory and time\n\nkept\n"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{script.HEADING}\n\n{script.START}\nold\n"
                   f"{script.END}\n\n{other}")
    script.write_section(doc, f"{script.START}\nnew\n{script.END}\n")
    text = doc.read_text()
    assert f"{script.START}\nnew\n{script.END}\n" in text and "old" not in text
    assert text.startswith(f"# Benchmarks\n\nintro\n\n{script.HEADING}\n\n") and text.endswith(other)


def test_benchmarks_section_survives_a_lost_start_marker(tmp_path):
    script = _make_benchmarks_md()
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\n{script.HEADING}\n\nstale\n{script.END}\n\n## Other\n\nx\n")
    script.write_section(doc, f"{script.START}\nnew\n{script.END}\n")
    text = doc.read_text()
    assert text.count(script.START) == 1 and text.count(script.END) == 1
    assert text.count(script.HEADING) == 1 and "## Other\n\nx\n" in text


def test_benchmarks_time_v_parser():
    script = _make_benchmarks_md()
    fields = script._time_v("\tUser time (seconds): 12.5\n\tSystem time (seconds): 1.5\n"
                            "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50\n"
                            "\tMaximum resident set size (kbytes): 1048576\n")
    assert fields == {"user_s": 12.5, "system_s": 1.5, "wall_s": 62.5, "max_rss_mb": 1024.0}


def test_libraw_backend_needs_an_input():
    with pytest.raises(bench.BenchError, match="libraw backend develops a RAW file"):
        bench.BenchConfig(Resolution(320, 240), backend="libraw")


def test_libraw_backend_times_libraw_in_a_fresh_process(tmp_path):
    from microisp_cli.training.dng import write_dng

    dng = write_dng(tmp_path / "frame.dng", synthetic.synthetic_mosaic(Resolution(320, 240)),
                    black_level=synthetic.SYNTHETIC_BLACK, white_level=synthetic.SYNTHETIC_WHITE)
    config = bench.BenchConfig(Resolution(320, 240), backend="libraw", input=str(dng), runs=2,
                               warmup=1)
    result = bench.run_isolated(config)
    assert result.ok, result.error
    assert len(result.runs_s) == 2 and result.median_s > 0 and result.peak_rss_mb > 0
    assert result.macs_per_pixel is None and result.stages is None
    assert set(result.network) == {"libraw", "rawpy"} and config.label == "320x240 LibRaw AHD"


def test_libraw_develop_writes_the_file(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    from microisp_cli.training.dng import write_dng

    dng = write_dng(tmp_path / "frame.dng", synthetic.synthetic_mosaic(Resolution(320, 240)),
                    black_level=synthetic.SYNTHETIC_BLACK, white_level=synthetic.SYNTHETIC_WHITE)
    out = tmp_path / "libraw.png"
    subprocess.run([sys.executable, "-m", "microisp_cli.bench", "--libraw-develop", str(dng), str(out)],
                   check=True)
    with Image.open(out) as image:
        assert image.size == (320, 240) and image.mode == "RGB"
