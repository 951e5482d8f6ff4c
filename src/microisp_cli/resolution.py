"""Frame sizes by name or as ``WxH``: one parser for every command that takes a resolution.

No heavy imports: the CLI parses resolutions before any runtime is loaded.
"""

from __future__ import annotations

import dataclasses
import re

#: Named frame sizes (width, height) in full-resolution pixels. FullHD and 12 MP (4:3) as in the
#: MicroISP paper's runtime table; 32 MP is the output size of a 32 MP phone sensor (Sony IMX616,
#: 6528 x 4896 = 31.96 MP).
NAMED: dict[str, tuple[int, int]] = {
    "fullhd": (1920, 1080),
    "12mp": (4000, 3000),
    "32mp": (6528, 4896),
}

#: Largest side accepted, a guard against typos such as ``40000x30000``.
MAX_SIDE = 65536

_WXH = re.compile(r"^\s*(\d+)\s*[xX*]\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class Resolution:
    """A Bayer frame size: ``width`` x ``height`` full-resolution pixels, both even."""

    width: int
    height: int
    name: str = ""

    @property
    def label(self) -> str:
        """The name given (``12mp``) or ``WxH``."""
        return self.name or f"{self.width}x{self.height}"

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def megapixels(self) -> float:
        return self.pixels / 1e6

    @property
    def packed_shape(self) -> tuple[int, int]:
        """(rows, columns) of the packed (H/2, W/2, 4) network input."""
        return self.height // 2, self.width // 2

    def to_dict(self) -> dict[str, object]:
        return {"name": self.label, "width": self.width, "height": self.height,
                "megapixels": round(self.megapixels, 3)}


def parse_resolution(text: str) -> Resolution:
    """``fullhd``, ``12mp``, ``32mp`` (any case) or ``WIDTHxHEIGHT`` -> :class:`Resolution`.

    Raises ValueError with a message naming the accepted forms. Both sides must be even (a Bayer
    frame is made of 2x2 cells) and at most :data:`MAX_SIDE`.
    """
    key = str(text).strip().lower()
    if key in NAMED:
        width, height = NAMED[key]
        return Resolution(width, height, key)
    match = _WXH.match(key)
    if not match:
        names = ", ".join(NAMED)
        raise ValueError(f"{text!r} is not a resolution: use one of {names} or WIDTHxHEIGHT "
                         "(for example 4000x3000)")
    width, height = int(match.group(1)), int(match.group(2))
    if not (2 <= width <= MAX_SIDE and 2 <= height <= MAX_SIDE):
        raise ValueError(f"{text!r}: each side must be between 2 and {MAX_SIDE} pixels")
    if width % 2 or height % 2:
        raise ValueError(f"{text!r}: width and height must be even (a Bayer frame is made of "
                         "2x2 cells)")
    return Resolution(width, height)
