"""What an experiment's stage 2 looks like: vocabulary, prompts, sequence length, model sizes.

The transformer's `vocab_size`, `num_positions` and `codebook_size` are not set by hand: they
follow from the tokenizer (codebook, latent shape of the clip), the dataset (classes, used only
when a task takes a class) and the task mix (one prompt per task when there are several; a
single-task experiment has no prompt, SPEC §4).
"""

from __future__ import annotations

import math

import attrs

from magvit.core.tokens import Vocabulary
from magvit.errors import MagvitError
from magvit.registry.experiment import Experiment, TransformerComponent


@attrs.frozen
class Stage2Layout:
    vocab: Vocabulary
    task_names: tuple[str, ...]  # the mix, in the experiment's order (= prompt order)
    clip_shape: tuple[int, int, int]
    latent_shape: tuple[int, int, int]
    transformer: TransformerComponent  # the [transformer] section with the derived sizes

    @property
    def num_latent(self) -> int:
        return math.prod(self.latent_shape)


def require_sections(exp: Experiment, *names: str) -> None:
    missing = [n for n in names if not getattr(exp, n)]
    if missing:
        where = f" in {exp.source}" if exp.source else ""
        raise MagvitError(
            f"stage 2 needs the section(s) {', '.join(f'[{n}]' for n in missing)}{where}; "
            "see `magvit config show tiny` for a complete example"
        )


def clip_shape(data_config) -> tuple[int, int, int]:
    resolution = data_config.resolution
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    return (data_config.frames, height, width)


def stage2_layout(exp: Experiment, tokenizer, data_config, tasks: dict) -> Stage2Layout:
    """The layout for `tokenizer` (built), `data_config` (the dataset's config) and the built
    `tasks` (name -> task, in the experiment's order)."""
    require_sections(exp, "data", "tokenizer", "transformer", "tasks")
    class_tasks = [name for name, task in tasks.items() if task.needs_class]
    num_classes = int(getattr(data_config, "num_classes", 0)) if class_tasks else 0
    if class_tasks and num_classes <= 0:
        raise MagvitError(
            f"task(s) {', '.join(class_tasks)} need class labels, but dataset "
            f"{exp.data.kind!r} has num_classes = 0; use a labelled dataset or drop them from [tasks]"
        )
    names = tuple(tasks)
    vocab = Vocabulary(tokenizer.codebook_size, num_classes, names if len(names) > 1 else ())
    clip = clip_shape(data_config)
    latent = tuple(tokenizer.latent_shape(*clip))
    sizes = dict(
        vocab_size=vocab.size,
        num_positions=vocab.prefix_length + math.prod(latent),
        codebook_size=vocab.codebook_size,
    )
    config = exp.transformer.config
    unknown = [k for k in sizes if not hasattr(config, k)]
    if unknown:
        raise MagvitError(
            f"transformer {exp.transformer.kind!r} has no config field(s) {', '.join(unknown)}; "
            "a stage-2 transformer plugin must accept vocab_size, num_positions and codebook_size"
        )
    sized = type(exp.transformer)(exp.transformer.kind, attrs.evolve(config, **sizes))
    return Stage2Layout(vocab, names, clip, latent, sized)


def layout_without_weights(exp: Experiment) -> Stage2Layout:
    """The layout training will build, from the config alone: the tokenizer is made on the
    meta device without its checkpoint (its codebook and factors are all the layout needs)."""
    from magvit.workflows.summary import tokenizer_without_weights

    tokenizer = tokenizer_without_weights(exp.tokenizer)
    tasks = {name: entry.task.build() for name, entry in exp.tasks.items()}
    return stage2_layout(exp, tokenizer, exp.data.config, tasks)


def sized_experiment(exp: Experiment) -> Experiment:
    """`exp` with the transformer's vocab_size, num_positions and codebook_size set to the
    values training gives the model (what `config show` and `config.resolved.toml` report)."""
    if exp.transformer is None or not exp.tasks or exp.data is None or exp.tokenizer is None:
        return exp
    try:
        layout = layout_without_weights(exp)
    except (MagvitError, OSError):  # e.g. a folder dataset not on disk: training reports it
        return exp
    return attrs.evolve(exp, transformer=layout.transformer)
