import math

import attrs
import pytest
import torch
from torch.utils.data import DataLoader

import magvit
from magvit.core.data.synthetic import MOTION_CLASSES, SHAPE_SETS, SyntheticShapes
from magvit.errors import ConfigError, MagvitError
from magvit.registry.experiment import validate_experiment


def test_same_seed_gives_identical_clips_and_other_seeds_do_not():
    a = SyntheticShapes().make("train", seed=3)
    b = SyntheticShapes().make("train", seed=3)
    c = SyntheticShapes().make("train", seed=4)
    for i in (0, 5, 2047):
        assert torch.equal(a[i]["video"], b[i]["video"]) and a[i]["label"] == b[i]["label"]
        assert not torch.equal(a[i]["video"], c[i]["video"])


def test_train_and_eval_splits_share_no_clip():
    cfg = SyntheticShapes(frames=2, resolution=8)
    train = torch.stack([cfg.make("train")[i]["video"] for i in range(64)])
    evals = torch.stack([cfg.make("eval")[i]["video"] for i in range(64)])
    distances = torch.cdist(train.flatten(1), evals.flatten(1))
    assert distances.min() > 0.1
    assert (len(cfg.make("train")), len(cfg.make("eval"))) == (2048, 256)


@pytest.mark.parametrize("frames,resolution", [(1, 8), (8, 32), (5, 48), (16, 20)])
def test_any_length_and_resolution(frames, resolution):
    item = SyntheticShapes(frames=frames, resolution=resolution).make("eval")[1]
    video = item["video"]
    assert video.shape == (3, frames, resolution, resolution) and video.dtype == torch.float32
    assert 0 <= video.min() and video.max() <= 1
    assert video.amax(0).max() >= 0.75 > 0.35 >= video.amax(0).min()  # bright shapes, dark ground


def test_labels_cover_the_classes_and_follow_num_classes():
    labels = [SyntheticShapes().make("eval")[i]["label"] for i in range(64)]
    assert sorted(set(labels)) == [0, 1, 2, 3]
    two = [SyntheticShapes(num_classes=2).make("eval")[i]["label"] for i in range(32)]
    assert set(two) == {0, 1}
    assert {SyntheticShapes(num_classes=0).make("eval")[i]["label"] for i in range(8)} == {-1}
    assert SyntheticShapes(num_classes=3).num_classes == 3


def shape_centres(video: torch.Tensor) -> torch.Tensor:
    """(T, 2) centre (x, y) in pixels of the bright pixels (the only shape) in each frame."""
    weight = (video.amax(0) > 0.55).float()  # (T, H, W): shapes >= 0.75, background <= 0.35
    size = video.shape[-1]
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    total = weight.sum((1, 2))
    return torch.stack([(weight.sum(1) * coords).sum(1) / total,
                        (weight.sum(2) * coords).sum(1) / total], dim=1)


def steps_away_from_the_walls(cfg: SyntheticShapes, clips: int):
    """(index, label, (dx, dy) pixels moved in one frame) of the 2-frame, 1-shape clips whose
    shape cannot bounce during the step."""
    data = cfg.make("eval", seed=0)
    margin = (0.16 + cfg.speed) * cfg.resolution + 1
    for i in range(clips):
        item = data[i]
        centres = shape_centres(item["video"])
        if ((margin < centres[0]) & (centres[0] < cfg.resolution - margin)).all():
            yield i, item["label"], (centres[1] - centres[0]).tolist()


def test_the_class_sets_the_direction_of_motion():
    """Property over many clips: one step moves the shape by speed along the class direction."""
    cfg = SyntheticShapes(frames=2, resolution=64, min_shapes=1, max_shapes=1)
    step = cfg.speed * cfg.resolution
    checked = set()
    for i, label, moved in steps_away_from_the_walls(cfg, 48):
        expected = torch.tensor(MOTION_CLASSES[label][1]) * step
        assert moved == pytest.approx(expected.tolist(), abs=0.35), i
        checked.add(label)
    assert checked == {0, 1, 2, 3}


def test_shapes_bounce_and_stay_inside():
    cfg = SyntheticShapes(frames=24, resolution=32, min_shapes=1, max_shapes=1, speed=0.15)
    data = cfg.make("train", seed=1)
    for i in range(6):
        centres = shape_centres(data[i]["video"])
        assert (centres > 2).all() and (centres < 30).all()
        axis = 0 if data[i]["label"] == 0 else 1
        velocity = centres[1:, axis] - centres[:-1, axis]
        assert (velocity > 0).any() and (velocity < 0).any()  # it turned around at a wall


def test_registered_and_usable_from_an_experiment():
    regs = magvit.registries()
    assert {"synthetic", "video_folder"} <= set(regs.datasets.names())
    exp = validate_experiment({"data": {"kind": "synthetic", "frames": 4, "resolution": 16}})
    data = exp.data.build()
    assert (data.frames, data.resolution, data.num_classes) == (4, 16, 4)
    assert data.make("train")[0]["video"].shape == (3, 4, 16, 16)


def test_config_errors_name_the_field():
    regs = magvit.registries()
    with pytest.raises(ConfigError, match="num_classes: must be in 0..4, got 7"):
        regs.datasets.create("synthetic", num_classes=7)
    with pytest.raises(ConfigError, match=r"max_shapes \(1\) must be at least min_shapes \(2\)"):
        regs.datasets.create("synthetic", max_shapes=1)
    with pytest.raises(ConfigError, match="frames: must be positive, got 0"):
        regs.datasets.create("synthetic", frames=0)
    with pytest.raises(ConfigError, match="speed: must be positive, got nan"):
        regs.datasets.create("synthetic", speed=float("nan"))
    with pytest.raises(ConfigError, match="edge: must be finite, got inf"):
        regs.datasets.create("synthetic", edge=float("inf"))
    with pytest.raises(MagvitError, match="unknown split 'test'.*'train' or 'eval'"):
        SyntheticShapes().make("test")


def test_workers_and_epochs_do_not_change_clips():
    data = SyntheticShapes(frames=2, resolution=8, train_clips=8).make("train", seed=2)
    serial = next(iter(DataLoader(data, batch_size=8)))
    data.set_epoch(5)
    parallel = next(iter(DataLoader(data, batch_size=8, num_workers=2)))
    assert torch.equal(serial["video"], parallel["video"])
    assert torch.equal(serial["label"], parallel["label"])


def test_colours_are_bright_and_saturated():
    from magvit.core.data.synthetic import _bright_colour

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        colour = _bright_colour(g)
        assert colour.max() >= 0.75 - 1e-6
        assert (colour.max() - colour.min()) / colour.max() >= 0.75 - 1e-6
    assert not math.isnan(float(colour.sum()))


def test_per_axis_speed_moves_diagonal_shapes_speed_along_each_axis():
    """With per_axis_speed, every class moves `speed` (2 px here) per frame on each axis it moves
    along, so one latent frame of two frames shifts a shape by a whole 4-pixel token."""
    cfg = SyntheticShapes(frames=2, resolution=64, min_shapes=1, max_shapes=1, per_axis_speed=True,
                          speed=1 / 32)
    checked = set()
    for i, label, moved in steps_away_from_the_walls(cfg, 64):
        direction = [math.copysign(1.0, d) if d else 0.0 for d in MOTION_CLASSES[label][1]]
        assert moved == pytest.approx([2 * d for d in direction], abs=0.35), i
        checked.add(label)
    assert checked == {0, 1, 2, 3}


def test_flat_background_palette_and_radius_options():
    cfg = SyntheticShapes(frames=3, resolution=32, background="flat", palette=4, min_shapes=1,
                          max_shapes=1, min_radius=0.2, max_radius=0.2)
    hues = {(1, 0, 0), (0.5, 1, 0), (0, 1, 1), (0.5, 0, 1)}  # 4 evenly spaced hues, full value
    for i in range(8):
        video = cfg.make("train", seed=3)[i]["video"]
        corner = video[:, :, :2, :2].reshape(3, -1)
        far = video[:, 0].reshape(3, -1)
        background = far[:, (far - corner[:, :1]).abs().amax(0) < 1e-6]
        assert background.shape[1] > 500  # most of the frame is exactly the corner colour
        brightest = far[:, far.sum(0).argmax()]
        assert tuple(round(float(c) * 2) / 2 for c in brightest) in hues
        inside = (far - corner[:, :1]).abs().amax(0) > 0.5
        area = float(inside.sum()) / 32**2  # a shape of radius 0.2 covers 3-13% of the frame
        assert 0.03 < area < 0.14, area
    with pytest.raises(ConfigError, match="radii must satisfy min_radius <= max_radius < 0.5"):
        magvit.registries().datasets.create("synthetic", min_radius=0.3, max_radius=0.2)
    with pytest.raises(ConfigError, match="background"):
        magvit.registries().datasets.create("synthetic", background="noise")


def test_wider_edges_blend_more_pixels_and_defaults_are_unchanged():
    sharp = SyntheticShapes(background="flat").make("eval")[0]["video"]
    soft = SyntheticShapes(background="flat", edge=3.0).make("eval")[0]["video"]
    assert sharp.shape == soft.shape == (3, 8, 32, 32)
    partial = lambda v: int(((v.amax(0) - v.amin(0)) > 0.05).sum())  # noqa: E731
    assert not torch.equal(sharp, soft) and partial(soft) >= partial(sharp)
    defaults = SyntheticShapes(background="gradient", palette=0, edge=1.0, per_axis_speed=False,
                               min_radius=0.10, max_radius=0.16)
    assert torch.equal(SyntheticShapes().make("eval")[5]["video"], defaults.make("eval")[5]["video"])


def _grid_shift_to(first: torch.Tensor, later: torch.Tensor, grid: int) -> tuple[int, int] | None:
    """The whole-grid (dx, dy) that moves `first`'s shape mask exactly onto `later`'s, if any."""
    span = range(-first.shape[-1] + grid, first.shape[-1], grid)
    for dy in span:
        for dx in span:
            if torch.allclose(torch.roll(first, (dy, dx), (0, 1)), later, atol=1e-5):
                return dx, dy
    return None


def test_grid_puts_every_other_frame_exactly_a_whole_grid_step_from_the_first():
    """With grid = 4 and 2 px per frame, frames 0, 2, 4, 6 show the same shape at whole 4-pixel
    offsets (bounces included), so a stride-4 tokenizer sees the same patches one token over."""
    cfg = SyntheticShapes(resolution=32, min_shapes=1, max_shapes=1, per_axis_speed=True,
                          background="flat", grid=4)
    loose = attrs.evolve(cfg, grid=0)
    on_grid = off_grid = 0
    for i in range(12):
        for config, kind in ((cfg, "grid"), (loose, "loose")):
            video = config.make("train", seed=1)[i]["video"]  # (3, T, H, W)
            mask = (video - video[:, :1, :1, :1]).abs().sum(0)  # (T, H, W): 0 on the background
            assert mask.shape == (8, 32, 32) and mask[0].sum() > 10
            shifts = [_grid_shift_to(mask[0], mask[t], 4) for t in (2, 4, 6)]
            if kind == "grid":
                assert None not in shifts, (i, shifts)
                assert shifts[0] != (0, 0)  # 4 px along each axis it moves on, or a bounce's fold
                on_grid += 1
            else:
                off_grid += None in shifts
    assert on_grid == 12 and off_grid >= 8  # without the grid, most clips move off it


def test_grid_starts_differ_between_clips_and_a_grid_too_coarse_is_refused():
    cfg = SyntheticShapes(background="flat", per_axis_speed=True, grid=4)
    videos = [cfg.make("eval")[i]["video"] for i in range(4)]
    assert all(v.shape == (3, 8, 32, 32) for v in videos)
    assert not any(torch.equal(a, b) for a, b in zip(videos, videos[1:]))
    with pytest.raises(ValueError, match="grid = 16 leaves a shape of max_radius 0.16 no room to move"):
        SyntheticShapes(grid=16)
    with pytest.raises(ConfigError, match="grid"):
        magvit.registries().datasets.create("synthetic", grid=-1)


def _mask_stats(video: torch.Tensor) -> tuple[float, float, float]:
    """(width / height of the bright pixels' bounding box, the share of that box they fill, area
    in pixels) in the first frame of a clip holding one shape."""
    mask = video[:, 0].amax(0) > 0.55  # shapes >= 0.75, background <= 0.35
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    height, width = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
    return width / height, float(mask.sum()) / (width * height), float(mask.sum())


def test_mass_kinds_are_told_apart_by_where_their_mass_lies_and_move_like_the_contour_kinds():
    """`kinds = "mass"`: disk, wide bar, tall bar, cross. Each class keeps its direction and every
    random draw (position, radius, colour, background), so only the drawn outline changes."""
    assert SHAPE_SETS["mass"] == ("disk", "wide bar", "tall bar", "cross")
    assert SHAPE_SETS["contour"] == tuple(kind for kind, _ in MOTION_CLASSES)
    contour = SyntheticShapes(resolution=64, min_shapes=1, max_shapes=1, background="flat",
                              min_radius=0.12, max_radius=0.12)
    mass = attrs.evolve(contour, kinds="mass")
    assert contour.kinds == "contour" and SyntheticShapes().kinds == "contour"
    seen = {}
    for i in range(40):
        a, b = contour.make("eval")[i], mass.make("eval")[i]
        assert a["label"] == b["label"] and a["video"].shape == b["video"].shape == (3, 8, 64, 64)
        assert torch.equal(a["video"][:, :, 0, 0], b["video"][:, :, 0, 0])  # the same background
        centres_a, centres_b = shape_centres(a["video"]), shape_centres(b["video"])
        if centres_a.sub(32).abs().max() < 20 and centres_b.sub(32).abs().max() < 20:
            assert torch.allclose(centres_a, centres_b, atol=0.6), i  # the same path (thresholded masks: within a pixel)
        aspect, fill, area = _mask_stats(b["video"])
        seen.setdefault(b["label"], []).append((aspect, fill, area))
    assert sorted(seen) == [0, 1, 2, 3]
    radius = 0.12 * 64  # 7.7 pixels
    for aspect, fill, area in seen[0]:  # disk of 0.9 r: round, fills ~pi/4 of its box
        assert 0.85 < aspect < 1.18 and 0.7 < fill < 0.9
        assert area == pytest.approx(math.pi * (0.9 * radius) ** 2, rel=0.2)
    for aspect, fill, _ in seen[1]:  # wide bar, 2.5 r x 1 r (less where a wall cuts it)
        assert aspect > 1.6 and fill > 0.9
    for aspect, fill, _ in seen[2]:  # tall bar
        assert aspect < 1 / 1.6 and fill > 0.9
    for aspect, fill, _ in seen[3]:  # cross: square box, arms fill ~60% of it
        assert 0.8 < aspect < 1.25 and 0.45 < fill < 0.72
    with pytest.raises(ConfigError, match="kinds"):
        magvit.registries().datasets.create("synthetic", kinds="blobs")
