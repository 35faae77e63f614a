"""The ten tasks: Table 12's masked shares, region geometry, conditions and config."""

from __future__ import annotations

import pytest
import torch

import magvit
from magvit.errors import ConfigError, MagvitError
from magvit.registry.experiment import validate_experiment

# Table 12 (paper, Appendix B.1): percent of masked pixels and tokens, 16x128x128 / 4x16x16.
TABLE_12 = {
    "fp": (93.75, 75), "fi": (87.5, 50), "opc": (75, 75), "opv": (50, 50), "oph": (50, 50),
    "opd": (50, 50), "ipc": (25, 25), "ipd": (25, 25), "cg": (100, 100), "cfp": (93.75, 75),
}
# The project's tiny default: 8x32x32 clips, factors (2, 4, 4), 4x8x8 tokens. One condition
# frame of eight is 12.5% (FP) and two of eight 25% (FI); the token shares are Table 12's.
TINY = {**TABLE_12, "fp": (87.5, 75), "fi": (75, 50), "cfp": (87.5, 75)}

SETTINGS = [((16, 128, 128), (4, 8, 8), TABLE_12), ((8, 32, 32), (2, 4, 4), TINY)]


def create(name, **config):
    return magvit.registries().tasks.create(name, **config)


def masked_percent(mask: torch.Tensor) -> float:
    return 100 * (1 - mask.float().mean().item())


@pytest.mark.parametrize("clip,factors,table", SETTINGS, ids=["16x128x128", "tiny-8x32x32"])
@pytest.mark.parametrize("name", list(TABLE_12))
def test_masked_shares_equal_table_12(name, clip, factors, table):
    task = create(name)
    latent = tuple(c // f for c, f in zip(clip, factors))
    pixel_mask = task.pixel_mask(clip)
    latent_mask = task.latent_mask(latent, factors)
    assert pixel_mask.shape == clip and latent_mask.shape == latent
    assert (masked_percent(pixel_mask), masked_percent(latent_mask)) == table[name]


def test_dynamic_outpainting_strip_on_latent_and_pixel_grids():
    latent = create("opd").latent_mask((4, 16, 16))
    starts = [int(frame[0].float().argmax()) for frame in latent]
    assert starts == [0, 3, 5, 8]
    assert latent.sum(dim=2).unique().tolist() == [8]  # width w/2 in every row
    pixels = create("opd").pixel_mask((16, 128, 128))
    assert [int(f[0].float().argmax()) for f in pixels][:5] == [0, 4, 9, 13, 17]  # 8.53 -> 9
    tiny = create("opd").latent_mask((4, 8, 8))
    assert [int(f[0].float().argmax()) for f in tiny] == [0, 1, 3, 4]  # 2.67 -> 3


def test_right_to_left_mirrors_the_strip():
    ltr = create("opd").latent_mask((4, 16, 16))
    rtl = create("opd", direction="right_to_left").latent_mask((4, 16, 16))
    assert torch.equal(rtl, ltr.flip(-1))


def test_dynamic_inpainting_hole_moves_in_the_centre_rows():
    hole = ~create("ipd").latent_mask((4, 16, 16))
    assert hole[:, :4].sum() == 0 and hole[:, 12:].sum() == 0
    assert [int(f[4].float().argmax()) for f in hole] == [0, 3, 5, 8]


def test_box_geometry_is_the_centre_half():
    mask = create("opc").pixel_mask((16, 128, 128))
    rows, cols = mask[0].any(1).nonzero().flatten(), mask[0].any(0).nonzero().flatten()
    assert (rows.min().item(), rows.max().item() + 1) == (32, 96)
    assert (cols.min().item(), cols.max().item() + 1) == (32, 96)
    assert create("opc", height=0.25).latent_mask((4, 16, 16))[0].any(1).nonzero().flatten().tolist() == [6, 7, 8, 9]


def test_any_pixel_rule_for_a_box_off_the_token_grid():
    # a 6-pixel strip [13, 19) of 32 touches tokens 3 and 4 (pixels [12, 20)) with factor 4
    latent = create("opv", width=6 / 32).latent_mask((4, 8, 8), (2, 4, 4))
    assert latent[0, 0].nonzero().flatten().tolist() == [3, 4]


def test_frame_prediction_pads_with_the_last_condition_frame():
    video = torch.rand(2, 3, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    padded, mask = create("fp", cond_frames=2).condition(video)
    assert mask.shape == (8, 16, 16) and mask.dtype == torch.bool
    assert mask[:2].all() and not mask[2:].any()
    assert torch.equal(padded[:, :, :2], video[:, :, :2])
    assert torch.equal(padded[:, :, 2:], video[:, :, 1:2].expand(-1, -1, 6, -1, -1))


def test_frame_interpolation_is_linear_in_k_over_l_plus_1():
    video = torch.rand(1, 3, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    padded, _ = create("fi").condition(video)
    first, last = video[:, :, 0], video[:, :, 7]
    for k in range(1, 7):  # L = 6 middle frames
        torch.testing.assert_close(padded[:, :, k], first + (last - first) * k / 7, rtol=0, atol=1e-6)


def test_class_generation_has_no_condition():
    task = create("cg")
    assert task.needs_class and not task.has_condition
    padded, mask = task.condition(torch.rand(1, 3, 4, 8, 8))
    assert not mask.any() and not padded.any()
    assert create("cfp").needs_class and not create("fp").needs_class


def test_padding_is_swappable_from_toml():
    exp = validate_experiment({"tasks": {"opc": {"padding": {"kind": "zero"}}, "fi": {}}})
    opc = exp.tasks["opc"].task.build()
    assert opc.padding.kind == "zero"
    video = torch.ones(1, 3, 4, 8, 8)
    padded, mask = opc.condition(video)
    assert padded.sum().item() == 3 * 4 * 16  # only the 4x4 centre box of each frame stays
    assert exp.tasks["fi"].task.build().padding.kind == "interpolate"


def test_bad_task_config_reports_every_problem():
    with pytest.raises(ConfigError) as info:
        validate_experiment({"tasks": {
            "fp": {"cond_frames": 0},
            "opd": {"direction": "up", "padding": "edgy"},
            "opc": {"height": 1.5},
        }})
    text = str(info.value)
    assert text.startswith("4 problem(s):")
    assert "tasks.fp.cond_frames: must be >= 1, got 0" in text
    assert "tasks.opd.direction: up not in literal" in text
    assert "tasks.opd.padding.kind: unknown padding 'edgy'" in text and "Did you mean 'edge'?" in text
    assert "tasks.opc.height: is a fraction of the frame in (0, 1], got 1.5" in text


def test_impossible_clips_are_refused_with_a_reason():
    with pytest.raises(MagvitError, match=r"4 condition frame\(s\) leave nothing to generate in a 4-frame clip"):
        create("fp", cond_frames=4).pixel_mask((4, 8, 8))
    with pytest.raises(MagvitError, match="fraction 0.1 of 8 cells is 0 cells"):
        create("opd", width=0.1).latent_mask((4, 8, 8), (2, 4, 4))
    with pytest.raises(MagvitError, match=r"task opc: expected a video \(B, 3, T, H, W\), got \(3, 8, 8\)"):
        create("opc").condition(torch.zeros(3, 8, 8))


def test_cli_tasks_list_prints_table_12(capsys):
    import json

    from magvit.cli.main import main

    assert main(["tasks", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    shares = {name: (row["masked_pixels"], row["masked_tokens"]) for name, row in rows.items()}
    assert {name: shares[name] for name in TABLE_12} == {k: tuple(map(float, v)) for k, v in TABLE_12.items()}
    assert rows["fi"]["padding"] == "interpolate" and rows["cg"]["needs_class"] is True


def test_cli_tasks_preview_writes_a_two_row_png(tmp_path, capsys):
    import av

    from magvit.cli.main import main

    out = tmp_path / "opd.png"
    code = main(["tasks", "preview", "--task", "opd", "--set", "width=0.25", "--frames", "4",
                 "--resolution", "16", "--synthetic", str(out)])
    assert code == 0
    assert "task opd, 75.00% of pixels to generate, padding zero" in capsys.readouterr().out
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
    assert (frame.height, frame.width) == (2 * 16 + 2, 4 * (16 + 2) - 2)


def test_cli_tasks_preview_bad_input_exits_2(tmp_path, capsys):
    from magvit.cli.main import main

    assert main(["tasks", "preview", "--task", "opx", "--synthetic", str(tmp_path / "a.png")]) == 2
    assert "unknown task 'opx'" in capsys.readouterr().err
    assert main(["tasks", "preview", "--task", "opd", "--synthetic", str(tmp_path / "in.mp4"),
                 str(tmp_path / "a.png")]) == 2
    assert "give INPUT and OUT.png, or --synthetic and OUT.png" in capsys.readouterr().err
