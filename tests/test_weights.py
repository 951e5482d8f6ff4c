import json

import numpy as np
import pytest

from microisp_cli.errors import WeightsError
from microisp_cli.model import PUBLISHED, ModelConfig, init_parameters
from microisp_cli.weights import (
    UPSTREAM_IMX586, Conditioning, Weights, load_weights, save_weights, tf1_variable_names,
)


def _small(tmp_path):
    cfg = ModelConfig(stages=1, blocks=1, features=2)
    w = Weights("tiny", cfg, init_parameters(cfg, seed=0), Conditioning(), "test weights")
    return save_weights(w, tmp_path / "tiny"), w


def test_roundtrip_by_manifest_and_by_npz(tmp_path):
    manifest, w = _small(tmp_path)
    for spec in (manifest, tmp_path / "tiny.npz"):
        back = load_weights(spec)
        assert back.config == w.config and back.conditioning == w.conditioning
        for k, v in w.params.items():
            np.testing.assert_array_equal(back.params[k], v)


def test_bundled_default_loads_by_name():
    w = load_weights("default")
    assert w.name == "default" and w.conditioning.output == "linear"


def test_corrupt_npz_is_refused_by_checksum(tmp_path):
    manifest, _ = _small(tmp_path)
    npz = tmp_path / "tiny.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(manifest)


def test_manifest_config_mismatch_is_refused(tmp_path):
    manifest, _ = _small(tmp_path)
    data = json.loads(manifest.read_text())
    data["model"]["features"] = 3
    manifest.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="do not match"):
        load_weights(manifest)


def test_unknown_name_lists_bundled_weights():
    with pytest.raises(WeightsError, match="bundled: .*default"):
        load_weights("no-such-weights")


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file"):
        load_weights(tmp_path / "absent.json")


def test_tf1_names_are_unique_and_cover_published_layout():
    names = tf1_variable_names(PUBLISHED)
    assert len(set(names.values())) == len(names)
    assert names["s0.b0.conv0.alpha"] == "generator-1/p_re_lu/alpha"
    assert names["s1.b0.conv0.alpha"] == "generator-2/p_re_lu_51/alpha"
    assert names["s0.b0.conv6.alpha"] == "generator-1/p_re_lu_16/alpha"
    assert names["s1.b1.att0.conv0.bias"] == "generator-2/Variable_25"


@pytest.mark.slow
def test_published_checkpoint_matches_published_tflite(upstream_checkpoint):
    """The published checkpoint, loaded by path, equals the published TFLite on 1x1500x2000x4."""
    from ai_edge_litert.interpreter import Interpreter

    weights = load_weights(upstream_checkpoint)
    assert weights.conditioning == UPSTREAM_IMX586
    x = np.random.default_rng(0).random((1, 1500, 2000, 4), dtype=np.float32)
    ours = weights.build()(x).numpy()
    interpreter = Interpreter(model_path=str(upstream_checkpoint.with_suffix(".tflite")), num_threads=2)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    reference = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.abs(ours - reference).max() <= 1e-5
