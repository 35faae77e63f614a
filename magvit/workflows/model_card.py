"""The files that make an exported model folder look like the ones users know from model hubs:
`config.json` (what the model is) and `README.md` (a model card: data, steps, metrics, the
commands that trained it), written next to the weights (safetensors) and the bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COMMAND_FILE = "command.txt"  # every `magvit train` invocation of a run, one per line
EVAL_FILE = "eval.json"


def config_json(record: dict[str, Any], step: int, parameters: dict[str, int]) -> str:
    """Architecture and vocabulary as JSON (hub tooling reads `config.json`)."""
    return json.dumps({
        "model_type": "magvit",
        "format": record["format"],
        "step": step,
        "clip_shape": record["clip_shape"],
        "latent_shape": record["latent_shape"],
        "task_names": record["task_names"],
        "vocabulary": record["vocabulary"],
        "transformer": record["transformer"],
        "tokenizer": record["tokenizer"],
        "parameters": parameters,
    }, indent=2) + "\n"


def _run_dir(checkpoint: Path) -> Path | None:
    """The run folder above a step folder (`run/checkpoints/step-N`), if that is where it came from."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None


def model_card(bundle, source: Path, parameters: dict[str, int]) -> str:
    exp, meta = bundle.experiment, bundle.meta
    run_dir = _run_dir(Path(meta["path"]))
    data = exp.data
    data_line = (f"`{data.kind}`: " + ", ".join(f"{k} = {v!r}" for k, v in _plain(data.config).items())
                 if data is not None else "not recorded")
    lines = [
        f"# {meta.get('experiment_name', exp.run.name)}",
        "",
        "A MAGVIT masked generative video transformer exported with `magvit export`: a "
        f"{_millions(parameters.get('transformer'))} transformer over the tokens of a "
        f"{_millions(parameters.get('tokenizer'))} `{meta['tokenizer']['kind']}` tokenizer.",
        "",
        "```python",
        "from magvit.pipeline import Pipeline",
        f'pipe = Pipeline.from_pretrained("{source.name}")   # this folder, or its hub id',
        f'result = pipe.generate("{bundle.task_names[0]}", video, seed=0)',
        "```",
        "",
        "| | |",
        "|---|---|",
        f"| tasks | {', '.join(bundle.task_names)} |",
        f"| clip | {'x'.join(map(str, meta['clip_shape']))} (frames x height x width) -> "
        f"{'x'.join(map(str, meta['latent_shape']))} tokens |",
        f"| training data | {data_line} |",
        f"| training steps | {meta['step']} (batch {exp.train.batch_size} x {exp.train.accumulate} accumulated) |",
        f"| decoder | {exp.decoder.kind if exp.decoder else 'commit'} |",
        *_class_reader_row(meta.get("class_reader"), parameters.get("class_reader")),
        *_runtime_row(meta.get("runtime")),
        "",
    ]
    scores = _eval_scores(run_dir)
    commands = (run_dir / COMMAND_FILE).read_text().splitlines() if run_dir and (run_dir / COMMAND_FILE).is_file() else []
    if run_dir is None:  # an exported folder exported again (a decoder swap): its card knows them
        scores, commands = _source_card(Path(meta["path"]))
    if scores:
        lines += ["## Held-out masked-token cross-entropy (nats, lower is better)", "",
                  "| task | CE |", "|---|---|"]
        lines += [f"| {task} | {ce:.3f} |" for task, ce in scores.items()]
        lines.append("")
    lines += ["## How it was trained", "", "```bash"]
    lines += commands or [f"magvit train transformer {meta.get('experiment_name', exp.run.name)}   "
                          "# the experiment in config.resolved.toml"]
    lines += ["```", ""]
    if meta.get("tokenizer_source"):
        lines += [f"The tokenizer is that of `{meta['tokenizer_source']}`, trained on the same codes and swapped in "
                  f"with `magvit export ... --tokenizer {meta['tokenizer_source']}`: the transformer and every "
                  "token are unchanged.", ""]
    lines += ["`config.resolved.toml` is the full experiment with the plugin versions used.", ""]
    return "\n".join(lines)


def _runtime_row(runtime: dict | None) -> list[str]:
    """The process that saved the training checkpoint: its threads and CPU kernels decide the
    floating-point sums, so a rerun elsewhere matches it only approximately."""
    if not runtime:
        return []
    return [f"| trained with | {runtime.get('threads')} thread(s), {runtime.get('cpu_capability')} CPU kernels, "
            f"malloc: {runtime.get('malloc')} |"]


def _class_reader_row(entry: dict | None, count: int | None) -> list[str]:
    if not entry:
        return []
    accuracy = entry.get("held_out_accuracy")
    scored = f", {accuracy:.1%} right on held-out clips" if accuracy is not None else ""
    return [f"| class reader | a {_millions(count)} frame classifier{scored}: the class search tries the class "
            "it reads from the given pixels (`--read-classes`) |"]


def _source_card(folder: Path) -> tuple[dict[str, float], list[str]]:
    """The cross-entropy table and the lines of the training commands' code blocks of the model
    card in `folder` (an exported model), or nothing where there is none."""
    card = folder / "README.md"
    if not card.is_file():
        return {}, []
    scores: dict[str, float] = {}
    commands: list[str] = []
    section, in_code = "", False
    for line in card.read_text().splitlines():
        if line.startswith("## "):
            section, in_code = line[3:], False
        elif section.startswith("Held-out masked-token cross-entropy") and line.startswith("| "):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            try:
                scores[cells[0]] = float(cells[1])
            except (IndexError, ValueError):
                continue  # the header and the rule
        elif section == "How it was trained":
            if line.startswith("```"):
                in_code = not in_code
            elif in_code:
                commands.append(line)
    return scores, commands


def _eval_scores(run_dir: Path | None) -> dict[str, float]:
    if run_dir is None or not (run_dir / EVAL_FILE).is_file():
        return {}
    try:
        return dict(json.loads((run_dir / EVAL_FILE).read_text()).get("masked_token_ce", {}))
    except (ValueError, AttributeError):
        return {}


def _plain(config) -> dict[str, Any]:
    from magvit.registry.schema import config_dict

    return {k: v for k, v in config_dict(config).items() if v is not None and not isinstance(v, dict)}


def _millions(count: int | None) -> str:
    return f"{count / 1e6:.2f}M-parameter" if count else "trained"
