"""A 3x5 pixel font for labelling pictures without an imaging library (lowercase, digits)."""

from __future__ import annotations

import torch

_GLYPHS = {
    "a": "010101111101101", "b": "110101110101110", "c": "011100100100011",
    "d": "110101101101110", "e": "111100110100111", "f": "111100110100100",
    "g": "011100101101011", "h": "101101111101101", "i": "111010010010111",
    "j": "001001001101010", "k": "101101110101101", "l": "100100100100111",
    "m": "101111111101101", "n": "110101101101101", "o": "010101101101010",
    "p": "110101110100100", "q": "010101101110011", "r": "110101110101101",
    "s": "011100010001110", "t": "111010010010010", "u": "101101101101111",
    "v": "101101101101010", "w": "101101111111101", "x": "101101010101101",
    "y": "101101010010010", "z": "111001010100111", "0": "111101101101111",
    "1": "010110010010111", "2": "110001010100111", "3": "110001010001110",
    "4": "101101111001001", "5": "111100110001110", "6": "011100111101111",
    "7": "111001010010010", "8": "111101111101111", "9": "111101111001110",
    " ": "000000000000000", "-": "000000111000000", ".": "000000000000010",
    "+": "000010111010000",
}
_UNKNOWN = "111101101101111"


def text_mask(text: str, scale: int = 1) -> torch.Tensor:
    """`(5*scale, (4*len-1)*scale)` bool: True where the text's pixels are."""
    columns = []
    for i, char in enumerate(text.lower()):
        bits = _GLYPHS.get(char, _UNKNOWN)
        glyph = torch.tensor([b == "1" for b in bits]).view(5, 3)
        if i:
            columns.append(torch.zeros(5, 1, dtype=torch.bool))
        columns.append(glyph)
    mask = torch.cat(columns, dim=1) if columns else torch.zeros(5, 0, dtype=torch.bool)
    return mask.repeat_interleave(scale, 0).repeat_interleave(scale, 1)


def label(text: str, height: int, width: int, scale: int = 2, ink: float = 0.0,
          paper: float = 1.0) -> torch.Tensor:
    """A `(3, height, width)` image with `text` centred (clipped if it does not fit)."""
    image = torch.full((3, height, width), paper)
    mask = text_mask(text, scale)[:height, :width]
    top, left = (height - mask.shape[0]) // 2, (width - mask.shape[1]) // 2
    region = image[:, top: top + mask.shape[0], left: left + mask.shape[1]]
    region[:, mask] = ink
    return image
