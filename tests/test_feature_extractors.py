"""The I3D network FVD uses: built without weights, loaded from a file the user names (state
dict or TorchScript), refused when its checksum is unknown unless allowed, and marked then."""

from __future__ import annotations

import pytest
import torch

import magvit
from magvit.core.features import InceptionI3d
from magvit.core.features.weights import sha256_of
from magvit.errors import MagvitError


@pytest.fixture(scope="module")
def i3d_state(tmp_path_factory):
    torch.manual_seed(0)
    net = InceptionI3d()
    path = tmp_path_factory.mktemp("i3d") / "i3d_random.pt"
    torch.save(net.state_dict(), path)
    return path, net


def test_architecture_names_size_and_widths():
    net = InceptionI3d().eval()
    keys = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == 12_697_264
    assert {"Conv3d_1a_7x7.conv3d.weight", "Mixed_3b.b1b.bn.running_mean", "Mixed_5c.b3b.conv3d.weight",
            "logits.conv3d.bias"} <= set(keys)
    assert tuple(keys["Conv3d_1a_7x7.conv3d.weight"].shape) == (64, 3, 7, 7, 7)
    assert tuple(keys["logits.conv3d.weight"].shape) == (400, 1024, 1, 1, 1)
    x = torch.rand(1, 3, 16, 224, 224) * 2 - 1
    with torch.inference_mode():
        assert net(x).shape == (1, 400)
        net.features = "pool"
        assert net(x).shape == (1, 1024) and net.width == 1024


def test_state_dict_file_is_checked_then_loaded_and_marked(i3d_state):
    path, net = i3d_state
    with pytest.raises(MagvitError, match=rf"sha256 {sha256_of(path)}\) is not a known i3d weights file"):
        magvit.registries().feature_extractors.create("i3d", weights=str(path))
    extractor = magvit.registries().feature_extractors.create("i3d", weights=str(path), allow_unverified=True)
    assert extractor.verified is False and extractor.sha256 == sha256_of(path)
    for name, tensor in net.state_dict().items():
        assert torch.equal(extractor.net.state_dict()[name], tensor), name
    with pytest.raises(MagvitError, match="not found; see docs/evaluation.md"):
        magvit.registries().feature_extractors.create("i3d", weights="missing.pt")


def test_a_file_that_is_not_i3d_is_refused(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(MagvitError, match="does not fit I3D"):
        magvit.registries().feature_extractors.create("i3d", weights=str(tmp_path / "other.pt"),
                                                      allow_unverified=True)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(MagvitError, match="neither a state dict nor a TorchScript file"):
        magvit.registries().feature_extractors.create("i3d", weights=str(tmp_path / "junk.pt"),
                                                      allow_unverified=True)


class ScriptedDetector(torch.nn.Module):
    """The call signature of the TorchScript I3D export PyTorch FVD code uses."""

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        return torch.cat([x.mean(dim=(1, 2, 3, 4)).unsqueeze(1), x.amax(dim=(1, 2, 3, 4)).unsqueeze(1)], 1)


@pytest.mark.filterwarnings("ignore:`torch.jit")
def test_torchscript_file_is_called_on_224_frames_in_minus_one_to_one(tmp_path):
    path = tmp_path / "detector.pt"
    torch.jit.script(ScriptedDetector()).save(str(path))
    extractor = magvit.registries().feature_extractors.create("i3d", weights=str(path), allow_unverified=True)
    video = torch.zeros(2, 3, 16, 32, 32)
    video[1] = 1.0
    features = extractor(video)
    assert features.shape == (2, 2) and features.dtype == torch.float32
    assert features[0].tolist() == [-1.0, -1.0] and features[1].tolist() == [1.0, 1.0]


def test_c3d_layout_and_inception_score_maths(tmp_path):
    from magvit.core.features import C3D, inception_score

    net = C3D()
    assert sum(p.numel() for p in net.parameters()) == 78_409_573
    assert tuple(net.state_dict()["fc6.weight"].shape) == (4096, 8192)
    assert tuple(net.state_dict()["fc8.weight"].shape) == (101, 4096)
    uniform = torch.full((20, 5), 0.2)
    assert inception_score(uniform, splits=10) == pytest.approx((1.0, 0.0))
    one_hot = torch.eye(5).repeat(4, 1)  # 20 samples, every split holds each class... per split:
    mean, std = inception_score(one_hot, splits=2)  # 10 samples, 5 classes twice: IS = 5
    assert mean == pytest.approx(5.0) and std == pytest.approx(0.0)
    with pytest.raises(ValueError, match="need"):
        inception_score(torch.rand(5, 3), splits=10)
    extractor = magvit.registries().feature_extractors.create("c3d")
    probabilities = extractor(torch.rand(2, 3, 16, 40, 50))
    assert probabilities.shape == (2, 101) and torch.allclose(probabilities.sum(1), torch.ones(2))
    torch.save({"fc8.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(MagvitError, match="does not fit C3D"):
        magvit.registries().feature_extractors.create("c3d", weights=str(tmp_path / "bad.pt"), allow_unverified=True)
