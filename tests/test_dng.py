import numpy as np
import pytest

from microisp_cli.bayer import CFA_PATTERNS
from microisp_cli.training.dng import write_dng


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_written_dng_decodes_with_rawpy(tmp_path, cfa):
    import rawpy

    rng = np.random.default_rng(0)
    mosaic = rng.integers(64, 4095, (40, 62)).astype(np.uint16)
    path = write_dng(tmp_path / "x.dng", mosaic, cfa, black_level=[64, 65, 66, 67], white_level=4095,
                     color_matrix=np.eye(3), as_shot_neutral=[0.5, 1.0, 0.8], orientation=6)
    with rawpy.imread(str(path)) as raw:
        pattern = "".join(chr(raw.color_desc[i]) for i in raw.raw_pattern.flatten())
        assert pattern == cfa
        np.testing.assert_array_equal(raw.raw_image_visible, mosaic)
        assert raw.white_level == 4095
        assert raw.sizes.flip == 6
        assert raw.camera_whitebalance[:3] == pytest.approx([2.0, 1.0, 1.25], rel=1e-5)
        cell_blacks = [raw.black_level_per_channel[c] for c in raw.raw_pattern.flatten()]
        assert cell_blacks == [64, 65, 66, 67]
