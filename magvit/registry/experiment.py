"""The experiment schema: what a TOML experiment may contain, validated all at once.

Sections that pick a plugin (`[tokenizer]`, `[decoder]`, `[tasks.<name>]`, ...) are `Component`s
validated by that plugin's schema; the fixed sections below are plain attrs classes. Stage-specific
settings live in their own sections (`[train]`, ...); every field has a default, so an experiment
states only what it changes.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs
import tomli_w
from cattrs.errors import BaseValidationError

from magvit.errors import ConfigError, InvalidValue
from magvit.registry.components import Component, current_registries, structure_component
from magvit.registry.converter import Problems, ValueTypeError, problem_pairs, toml_type
from magvit.registry.schema import CONVERTER
from magvit.registry.toml_files import apply_overrides, find_experiment, load_raw
from magvit.registry.validators import at_least, finite, in_range, positive

TokenizerComponent = Component.of("tokenizers")
TransformerComponent = Component.of("transformers")
TaskComponent = Component.of("tasks")
DecoderComponent = Component.of("decoders")
DatasetComponent = Component.of("datasets")
AttentionComponent = Component.of("attentions")
ScheduleComponent = Component.of("schedules")


LoggerComponent = Component.of("loggers")


@attrs.define(kw_only=True)
class RunSection:
    name: str = "experiment"
    seed: int = 0
    output_dir: str = "runs"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    # Where metrics go (rank 0 only): `["jsonl", "tensorboard"]`, or tables with a logger's keys;
    # unset = ["jsonl"] (metrics.jsonl, what `magvit plot` reads).
    loggers: list[LoggerComponent] | None = None
    media_every: int = attrs.field(default=0, validator=at_least(0))  # sample/reconstruction images; 0 = off


def _warmup_within_steps(instance, _attribute, value) -> None:
    if not 0 <= value <= instance.steps:
        raise InvalidValue("warmup_steps", f"must be between 0 and train.steps ({instance.steps}), got {value}; "
                           f"set train.warmup_steps to at most {instance.steps} (0 = no warm-up)")


def _warm_needs_memo(instance, _attribute, value) -> None:
    if value and not instance.memoize_tokens:
        raise InvalidValue("warm_tokens", "warms the token memo, which is off; "
                           "set commit.memoize_tokens = true as well, or drop warm_tokens")


def _betas(_instance, _attribute, value) -> None:
    if not all(0 <= b < 1 for b in value):
        raise InvalidValue("betas", f"must both be in [0, 1), got {list(value)}")


@attrs.define(kw_only=True)
class TrainSection:
    """Optimisation settings shared by both stages (each stage reads what applies to it)."""

    steps: int = attrs.field(default=1000, validator=at_least(1))
    batch_size: int = attrs.field(default=8, validator=at_least(1))  # per optimiser step, all ranks
    # Gradient accumulation: each step sums the gradients of `accumulate` batches of
    # `batch_size`, so the effective batch is batch_size x accumulate (DDP syncs only the last).
    accumulate: int = attrs.field(default=1, validator=at_least(1))
    lr: float = attrs.field(default=1e-4, validator=[finite, positive])
    min_lr_ratio: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))
    warmup_steps: int = attrs.field(default=0, validator=_warmup_within_steps)
    weight_decay: float = attrs.field(default=0.0, validator=[finite, at_least(0.0)])
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.99), validator=_betas)
    grad_clip: float = attrs.field(default=0.0, validator=[finite, at_least(0.0)])  # 0 = off
    ema_decay: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0, high_open=True))  # 0 = off
    num_workers: int = attrs.field(default=0, validator=at_least(0))
    log_every: int = attrs.field(default=10, validator=at_least(1))
    checkpoint_every: int = attrs.field(default=200, validator=at_least(1))
    eval_every: int = attrs.field(default=0, validator=at_least(0))  # 0 = off
    eval_batches: int = attrs.field(default=4, validator=at_least(1))
    # Stage 2 only: a stage-2 checkpoint (run, step folder, bundle or `default`) whose
    # transformer weights start this run, with a fresh optimiser and schedule. `--resume`
    # continues from the run's own checkpoint instead.
    init_from: str = ""


@attrs.define(kw_only=True)
class CommitSection:
    """Stage-2 COMMIT training (paper §3.2): how tokens are masked and the loss weighted."""

    mask_schedule: ScheduleComponent | None = None  # the ratio gamma(U[0,1)); None = cosine
    weight_mode: str = "mask+refine+recons"  # Eq. 4 terms; "mask" alone is plain MTM
    label_smoothing: float = 1e-4
    class_dropout: float = 0.0  # P(class -> unconditional), for classifier-free guidance
    token_cache: str = ""  # a token cache directory for the target tokens; "" = encode on the fly
    # Encode each clip once per task and remember the tokens. Made for datasets whose item i is
    # the same clip every epoch (synthetic); a random-clip dataset keeps its epoch-0 clips.
    memoize_tokens: bool = False
    # With memoize_tokens: encode every training clip for the target and each task before step 1
    # (a progress bar; batches of 4 training batches, no autograd), so no step waits on the
    # tokenizer. Pays for pairs a short run would never meet: for runs that visit each clip often.
    warm_tokens: bool = attrs.field(default=False, validator=_warm_needs_memo)


@attrs.frozen
class TaskEntry:
    """One task of the training mix: how often it is drawn and the task plugin's config."""

    weight: float
    task: Component


def structure_task_mix(value: Any, _type: Any) -> dict[str, TaskEntry]:
    if not isinstance(value, dict):
        raise ValueTypeError(f"expected a table of tasks, got {toml_type(value)} {value!r}")
    out, problems = {}, []
    for key, section in value.items():
        if not isinstance(section, dict):
            problems.append((key, f"expected a table ([tasks.{key}]), got {toml_type(section)} {section!r}"))
            continue
        section = dict(section)
        weight = section.pop("weight", 1.0)
        if type(weight) not in (int, float) or weight <= 0:
            problems.append((f"{key}.weight", f"expected a positive number, got {weight!r}"))
        section.setdefault("kind", key)
        try:
            out[key] = TaskEntry(float(weight), structure_component(section, TaskComponent, ("weight",)))
        except Problems as exc:
            problems.extend((f"{key}.{p}" if p else key, m) for p, m in exc.problems)
    if problems:
        raise Problems(problems)
    return out


@attrs.define(kw_only=True)
class Experiment:
    run: RunSection = attrs.Factory(RunSection)
    data: DatasetComponent | None = None
    tokenizer: TokenizerComponent | None = None
    transformer: TransformerComponent | None = None
    tasks: dict[str, TaskEntry] = attrs.Factory(dict)
    decoder: DecoderComponent | None = None
    train: TrainSection = attrs.Factory(TrainSection)
    commit: CommitSection = attrs.Factory(CommitSection)
    # Sections owned by one stage and validated by it (e.g. `[losses]` for the tokenizer).
    losses: dict[str, Any] = attrs.Factory(dict)
    eval: dict[str, Any] = attrs.Factory(dict)
    source: str = attrs.field(default="", metadata={"internal": True})
    # The dotted keys the command line's --set gave (not read from TOML: init=False).
    set_keys: tuple[str, ...] = attrs.field(default=(), init=False, eq=False, metadata={"internal": True})


CONVERTER.register_structure_hook_func(lambda t: t == dict[str, TaskEntry], structure_task_mix)
CONVERTER.register_unstructure_hook(
    TaskEntry, lambda e: {"weight": e.weight, **e.task.to_dict()}
)


def validate_experiment(
    raw: dict[str, Any], source: str | None = None, set_keys: Iterable[str] = ()
) -> Experiment:
    """Structure `raw` into an `Experiment`, every problem at once. `set_keys` are the dotted
    keys the command line's `--set` gave: a problem at or below one of them says so, since the
    file named as the source does not contain it."""
    try:
        exp = CONVERTER.structure(raw, Experiment)
    except BaseValidationError as exc:
        raise config_error([f"{p}: {m}" for p, m in problem_pairs(exc)], source, set_keys) from None
    exp.source, exp.set_keys = source or "", tuple(set_keys)
    return exp


def config_error(problems: list[str], source: str | None, set_keys: Iterable[str] = ()) -> ConfigError:
    """`problems` (`dotted.path: message` lines) as one `ConfigError`: a problem at or below a
    `--set` key, an unknown table above one, a key missing from a table whose `kind` a `--set`
    chose, or one whose message names the key (a value checked against another, such as
    train.warmup_steps against train.steps), ends with ` (from --set KEY)`, and then the header
    says the file was overridden."""
    keys, out, overridden = tuple(dict.fromkeys(set_keys)), [], False
    for line in problems:
        path, _, message = line.partition(": ")
        table = path.rpartition(".")[0]
        causes = [key for key in keys if path == key or path.startswith(key + ".")
                  or key.startswith(path + ".") and message.startswith("unknown key")
                  or key == f"{table}.kind" and message.startswith("required key is missing")
                  or "." in key and re.search(rf"(?<![\w.]){re.escape(key)}(?!\w|\.\w)", message)]
        out.append(line + (f" (from {', '.join(f'--set {key}' for key in causes)})" if causes else ""))
        overridden = overridden or bool(causes)
    if source and overridden:
        source = f"{source} with its --set overrides"
    return ConfigError(out, source)


def without_run_record(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` less the tables `write_resolved_config` adds to a run's experiment (`[plugins]`,
    `[resolved]`), so a run's `config.resolved.toml` reads back as the experiment it ran. Only a
    file with a `[resolved]` table is such a record: elsewhere `plugins` stays an unknown key."""
    if not isinstance(raw.get("resolved"), dict):
        return raw
    return {key: value for key, value in raw.items() if key not in ("plugins", "resolved")}


def load_experiment(name_or_path: str | Path, overrides: Iterable[str] = ()) -> Experiment:
    """Read, merge `extends`, apply `--set` overrides, then validate."""
    overrides = list(overrides)
    path = find_experiment(name_or_path)
    raw = apply_overrides(without_run_record(load_raw(path)), overrides)
    set_keys = [item.partition("=")[0].strip() for item in overrides]
    return validate_experiment(raw, str(path), set_keys)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value]
    return value


def experiment_dict(exp: Experiment) -> dict[str, Any]:
    """The fully resolved experiment as plain TOML-ready data (defaults filled in)."""
    data = CONVERTER.unstructure(exp)
    data.pop("source", None)
    data.pop("set_keys", None)
    return _drop_none(data)


def experiment_toml(exp: Experiment, with_plugins: bool = False) -> str:
    data = experiment_dict(exp)
    if with_plugins:
        data["plugins"] = current_registries().versions()
        data["resolved"] = {
            "effective_batch": exp.train.batch_size * exp.train.accumulate,  # clips per optimiser step
            "source": exp.source,
            "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    return tomli_w.dumps(data)


def write_resolved_config(exp: Experiment, out_dir: str | Path) -> Path:
    """Write `config.resolved.toml` (with plugin versions) beside a run's outputs."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.resolved.toml"
    path.write_text(experiment_toml(exp, with_plugins=True))
    return path
