"""Every shipped experiment file validates, and the two CPU tokenizers have the grids they claim."""

from __future__ import annotations

import attrs
import pytest
import torch

from magvit.registry.experiment import load_experiment
from magvit.registry.toml_files import shipped_experiments

SHIPPED = shipped_experiments()


def test_the_paper_and_cpu_experiments_are_all_shipped():
    assert {"tiny", "tiny-tokenizer", "tiny-tokenizer-fine", "bair-b-tokenizer",
            "ucf101-b-tokenizer", "ucf101-l-tokenizer"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_experiment_validates(name):
    experiment = load_experiment(name)
    assert experiment.run.name == name
    assert experiment.data is not None and experiment.tokenizer is not None


@pytest.mark.parametrize("name, tokens, codes", [
    ("tiny-tokenizer", (4, 8, 8), 512),         # the bundled default's: 256 tokens, cheap stage 2
    ("tiny-tokenizer-fine", (4, 16, 16), 1024),  # the paper's 1024-token layout at 32x32
    ("tiny-tokenizer-lfq", (4, 8, 8), 2**14),    # the same grid, 14 bits per token
    ("tiny-tokenizer-fsq", (4, 8, 8), 64000),    # the same grid, ~16 bits per token
    ("tiny-tokenizer-fsq-local", (4, 8, 8), 64000),  # ... with a spatially local encoder
    ("tiny-flat-tokenizer", (4, 8, 8), 4375),    # FSQ 7x5x5x5x5 on the flat-background clips
    ("tiny-flat-local-tokenizer", (4, 8, 8), 4375),  # ... with a spatially local encoder
    ("tiny-flat-local-tokenizer-long", (4, 8, 8), 4375),  # ... trained 10,000 steps
    ("tiny-flat-conv-tokenizer", (4, 8, 8), 4375),  # ... downsampling by learned convs
    ("tiny-grid-tokenizer", (4, 8, 8), 4375),    # ... on clips whose shapes start on a 4 px grid
    ("tiny-flat-gpu-tokenizer", (4, 8, 8), 4375),  # ... trained on a GPU, batch 32
    ("tiny-flat-gpu-local-decoder", (4, 8, 8), 4375),  # ... a local decoder for the default's codes
    ("tiny-flat-gpu-decoder", (4, 8, 8), 4375),  # ... the default's decoder, trained further
    ("tiny-flat-gpu-decoder-misplaced", (4, 8, 8), 4375),  # ... and on with misplaced tokens
    ("tiny-flat-cond-tokenizer", (4, 8, 8), 4375),  # the GPU tokenizer, half its clips padded by a task
    ("tiny-big-gpu-tokenizer", (4, 8, 8), 4375),  # the GPU tokenizer on larger shapes
    ("tiny-big-gpu-decoder", (4, 8, 8), 4375),  # ... its decoder, trained further
    ("tiny-mass-gpu-tokenizer", (4, 8, 8), 4375),  # the GPU tokenizer on shape kinds told apart by mass
    ("tiny-mass-gpu-decoder", (4, 8, 8), 4375),  # ... its decoder, trained further
])
def test_cpu_tokenizer_grid(name, tokens, codes):
    experiment = load_experiment(name)
    assert (experiment.data.config.frames, experiment.data.config.resolution) == (8, 32)
    tokenizer = experiment.tokenizer.build().eval()
    video = torch.rand(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ids = tokenizer.encode(video)
        decoded = tokenizer.decode(ids)
    assert tokenizer.codebook_size == codes
    assert ids.shape == (2, *tokens) and ids.dtype == torch.int64
    assert 0 <= ids.min() and ids.max() < codes
    assert decoded.shape == video.shape and torch.isfinite(decoded).all()


@pytest.mark.parametrize("name", ["tiny", "tiny-lfq", "tiny-fsq", "tiny-fsq-local", "tiny-flat", "tiny-flat-local",
                                  "tiny-flat-local-long", "tiny-flat-gpu", "tiny-big-gpu", "tiny-mass-gpu", "tiny-grid", "bair-mt8",
                                  "ucf101-cg", "ucf101-cg-lfq"])
def test_stage2_reads_the_run_its_stage1_experiment_writes(name):
    """`magvit train tokenizer X` writes runs/X; the stage-2 experiment must point there, with
    the same tokenizer section (quantizer included) apart from the checkpoint."""
    section = load_experiment(name).tokenizer
    checkpoint = section.config.checkpoint
    assert checkpoint.startswith("runs/")
    stage1 = checkpoint.removeprefix("runs/")
    assert stage1 in SHIPPED and load_experiment(stage1).run.name == stage1
    trained = load_experiment(stage1).tokenizer
    assert trained.kind == section.kind
    assert trained.config.architecture() == section.config.architecture()
    assert trained.config.quantizer == section.config.quantizer
    if section.config.preset == "tiny":  # ... and on synthetic clips drawn like the tokenizer's
        sizes = ("train_clips", "eval_clips", "num_classes")
        drawn = lambda exp: {k: v for k, v in attrs.asdict(exp.data.config).items() if k not in sizes}  # noqa: E731
        assert drawn(load_experiment(name)) == drawn(load_experiment(stage1))


def test_paper_size_lfq_stage2_factorises_its_2_to_the_18_head():
    from magvit.core.transformer.bert import parameter_count
    from magvit.workflows.stage2_layout import stage2_layout

    exp = load_experiment("ucf101-cg-lfq")
    tokenizer = torch.nn.Module()  # the layout needs only the codebook and the grid
    tokenizer.codebook_size, tokenizer.factors, tokenizer.causal = 2**18, (4, 8, 8), True
    tokenizer.latent_shape = lambda t, h, w: (1 + (t - 1) // 4, h // 8, w // 8)
    layout = stage2_layout(exp, tokenizer, exp.data.config, {"cg": exp.tasks["cg"].task.build()})
    config = layout.transformer.config.model_config()
    assert config.codebook_size == 2**18 and config.codebook_factors == (512, 512)
    assert layout.latent_shape == (5, 16, 16) and config.num_positions == 1 + 5 * 16 * 16
    plain = parameter_count(attrs.evolve(config, codebook_factors=()))
    assert plain - parameter_count(config) == (2**18 - 1024) * (768 + 1)  # rows of 768 + one bias each


def test_paper_size_lfq_tokenizer_is_causal_at_2_to_the_18():
    experiment = load_experiment("ucf101-b-tokenizer-lfq")
    assert experiment.data.config.frames == 17
    tokenizer = experiment.tokenizer.build()
    assert tokenizer.causal and tokenizer.codebook_size == 2**18
    assert tokenizer.latent_shape(17, 128, 128) == (5, 16, 16)
