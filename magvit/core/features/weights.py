"""Weights files for evaluation networks, checked by SHA-256 before they are trusted.

Pretrained feature extractors cannot be downloaded at run time: the user names a file. A file
whose digest is in `KNOWN` is accepted as that published network; any other file is refused
unless the caller allows unverified weights, and then every score made with it is marked
unverified.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path

import attrs
import torch

from magvit.errors import MagvitError


@attrs.frozen
class KnownWeights:
    name: str
    network: str  # "i3d" / "c3d" / ...
    source: str  # where the published file comes from
    layout: str  # "state_dict" or "torchscript"
    sha256: str


# Digests are recorded here once the published files have been hashed on a machine that can
# reach them (this project's machines cannot); see docs/evaluation.md for the files and sources.
KNOWN: tuple[KnownWeights, ...] = ()


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@attrs.frozen
class CheckedFile:
    path: Path
    sha256: str
    known: KnownWeights | None

    @property
    def verified(self) -> bool:
        return self.known is not None


def check_weights_file(path: str | Path, network: str, *, allow_unverified: bool) -> CheckedFile:
    file = Path(path)
    if not file.is_file():
        raise MagvitError(f"{network} weights {str(path)!r} not found; see docs/evaluation.md for the "
                          "published files and where they come from")
    digest = sha256_of(file)
    known = next((k for k in KNOWN if k.sha256 == digest and k.network == network), None)
    if known is None and not allow_unverified:
        raise MagvitError(
            f"{file} (sha256 {digest}) is not a known {network} weights file, so scores made with it "
            "could not be compared with published ones. Check it against docs/evaluation.md, or pass "
            "--allow-unverified (the results are then marked unverified)"
        )
    return CheckedFile(file, digest, known)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip holding `<name>/constants.pkl` and `<name>/code/`."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_state_or_script(path: Path):
    """A state dict (`.pt`/`.pth`/`.safetensors`) or a TorchScript module."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():  # the published FVD detector is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(path), map_location="cpu").eval()
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle and zip readers raise many types
        raise MagvitError(f"{path} is neither a state dict nor a TorchScript file: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
