"""encode.py: the sRGB ICC profile, PNG/TIFF/JPEG/WebP writers, atomic writes."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile

from PIL import Image

from microisp_cli.publish import atomic_file
from microisp_cli.colour import icc_profile
from microisp_cli.encode import default_bits, format_for, srgb_icc_profile, write_image
from microisp_cli.errors import OutputError


def _image(dtype, h=23, w=31):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    return rng.integers(0, top, (h, w, 3), endpoint=True).astype(dtype)


def _s15(b: bytes) -> float:
    return struct.unpack(">i", b)[0] / 65536


def _tags(profile: bytes) -> dict[bytes, bytes]:
    count = struct.unpack(">I", profile[128:132])[0]
    tags = {}
    for k in range(count):
        sig, offset, size = struct.unpack(">4sII", profile[132 + 12 * k:144 + 12 * k])
        assert offset % 4 == 0 and offset + size <= len(profile)
        tags[sig] = profile[offset:offset + size]
    return tags


def test_icc_profile_is_a_valid_srgb_v2_profile():
    p = srgb_icc_profile()
    assert struct.unpack(">I", p[:4])[0] == len(p) and len(p) % 4 == 0
    assert p[8:12] == b"\x02\x10\x00\x00" and p[12:24] == b"mntrRGB XYZ " and p[36:40] == b"acsp"
    assert [round(_s15(p[68 + 4 * i:72 + 4 * i]), 4) for i in range(3)] == [0.9642, 1.0, 0.8249]
    tags = _tags(p)
    assert set(tags) == {b"desc", b"wtpt", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC", b"cprt"}
    assert tags[b"desc"].startswith(b"desc") and b"sRGB" in tags[b"desc"]
    # the three primaries add up to the D50 white point
    xyz = np.array([[_s15(tags[t][8 + 4 * i:12 + 4 * i]) for i in range(3)] for t in (b"rXYZ", b"gXYZ", b"bXYZ")])
    np.testing.assert_allclose(xyz.sum(axis=0), [0.9642, 1.0, 0.8249], atol=5e-4)
    curve = tags[b"rTRC"]
    assert curve[:4] == b"curv"
    n = struct.unpack(">I", curve[8:12])[0]
    table = np.frombuffer(curve[12:12 + 2 * n], ">u2")
    assert table[0] == 0 and table[-1] == 65535 and np.all(np.diff(table.astype(int)) >= 0)
    assert abs(table[n // 2] / 65535 - ((0.5 + 0.055) / 1.055) ** 2.4) < 1e-3


def _png_chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, []
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        crc = struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def _unfilter_sub(raw: bytes, h: int, stride: int, bpp: int) -> np.ndarray:
    rows = np.frombuffer(raw, np.uint8).reshape(h, stride + 1)
    assert np.all(rows[:, 0] == 1)
    out = rows[:, 1:].astype(np.int64)
    for x in range(bpp, stride):
        out[:, x] = (out[:, x] + out[:, x - bpp]) % 256
    return out.astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trip(tmp_path, dtype):
    image = _image(dtype)
    path = write_image(tmp_path / "x.png", image)
    chunks = _png_chunks(path.read_bytes())
    kinds = [k for k, _ in chunks]
    assert kinds[:3] == [b"IHDR", b"iCCP", b"pHYs"] and kinds[-1] == b"IEND"
    name, rest = chunks[1][1].split(b"\0", 1)
    assert name == b"ICC profile" and zlib.decompress(rest[1:]) == srgb_icc_profile()
    assert struct.unpack(">IIB", chunks[2][1]) == (11811, 11811, 1)  # 300 dpi in pixels per metre
    w, h, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (w, h, depth, colour) == (31, 23, 8 * image.itemsize, 2)
    idat = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    pixels = _unfilter_sub(idat, h, w * 3 * image.itemsize, 3 * image.itemsize)
    back = pixels.view(">u2" if dtype == np.uint16 else np.uint8).reshape(h, w, 3)
    np.testing.assert_array_equal(back, image)


@pytest.mark.slow
def test_png_decodes_with_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    image = _image(np.uint16, 40, 50)
    path = write_image(tmp_path / "x.png", image[::-1].swapaxes(0, 1))  # non-contiguous view
    back = tf.io.decode_png(path.read_bytes(), dtype=tf.uint16).numpy()
    np.testing.assert_array_equal(back, image[::-1].swapaxes(0, 1))


def test_tiff_round_trip_with_profile(tmp_path):
    image = _image(np.uint16)
    path = write_image(tmp_path / "x.tif", image)
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), image)
        page = tif.pages[0]
        assert bytes(page.tags[34675].value) == srgb_icc_profile()
        assert page.tags["Software"].value.startswith("microisp ")
        assert page.tags["XResolution"].value == (300, 1) and page.tags["ResolutionUnit"].value == 2


def _gradient() -> np.ndarray:
    image = np.zeros((32, 48, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, 48)[None]
    image[..., 2] = np.linspace(0, 255, 32)[:, None]
    return image


@pytest.mark.parametrize("subsampling, factors", [("444", (1, 1)), ("422", (2, 1)), ("420", (2, 2))])
def test_jpeg_with_profile_and_subsampling(tmp_path, subsampling, factors):
    image = _gradient()
    path = write_image(tmp_path / "x.jpg", image, quality=80, subsampling=subsampling)
    with Image.open(path) as back:
        assert back.format == "JPEG" and back.info["icc_profile"] == srgb_icc_profile()
        assert back.info["dpi"] == (300, 300)
        # the luma plane's sampling factors relative to chroma: (h, v) of the first component
        assert back.layer[0][1:3] == factors
        assert np.abs(np.asarray(back).astype(int) - image).mean() < 6
    with pytest.raises(OutputError, match="8-bit"):
        write_image(tmp_path / "y.jpg", image.astype(np.uint16))


def test_webp_with_chosen_profile(tmp_path):
    image = _gradient()
    path = write_image(tmp_path / "x.webp", image, quality=90, icc=icc_profile("display-p3"))
    with Image.open(path) as back:
        assert back.format == "WEBP" and back.info["icc_profile"] == icc_profile("display-p3")
        assert np.abs(np.asarray(back.convert("RGB")).astype(int) - image).mean() < 6


def test_jpeg_does_not_import_tensorflow(tmp_path):
    code = ("import sys, numpy as np; from microisp_cli.encode import write_image; "
            f"write_image({str(tmp_path / 'x.jpg')!r}, np.zeros((8, 8, 3), np.uint8)); "
            "import microisp_cli.develop; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_formats_and_default_bits():
    assert format_for("a.PNG") == "png" and format_for("a.tiff") == "tiff" and format_for("a.jpeg") == "jpeg"
    assert default_bits("a.png") == 8 and default_bits("a.tif") == 16 and default_bits("a.jpg") == 8
    assert format_for("a.WebP") == "webp" and default_bits("a.webp") == 8
    with pytest.raises(OutputError, match="unknown output format '.gif'"):
        format_for("a.gif")


def test_existing_file_needs_overwrite(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists"):
        write_image(target, _image(np.uint8))
    assert target.read_bytes() == b"old"
    write_image(target, _image(np.uint8), overwrite=True)
    assert target.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_nothing(tmp_path, error):
    target = tmp_path / "x.png"
    with pytest.raises(error):
        with atomic_file(target) as handle:
            handle.write(b"partial")
            raise error()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_overwrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target, overwrite=True) as handle:
            handle.write(b"partial")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_unwritable_location(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write there"):
        write_image(blocker / "x.png", _image(np.uint8))
