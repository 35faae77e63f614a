"""Experiments: strict structuring, every problem at once with its path, extends and --set."""

from __future__ import annotations

import sys

import pytest

from magvit.cli.main import main
from magvit.errors import ConfigError, MagvitError
from magvit.registry.experiment import (
    experiment_dict,
    load_experiment,
    validate_experiment,
    write_resolved_config,
)
from magvit.registry.toml_files import apply_overrides, parse_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def write(path, text):
    path.write_text(text)
    return path


def test_valid_experiment_builds_its_components(toy_registries):
    exp = validate_experiment({
        "run": {"name": "x", "seed": 3},
        "tasks": {"fp": {"weight": 2, "cond_frames": 2, "padding": "edge"}},
        "decoder": {"kind": "commit", "steps": 8, "temperature": 1},
    })
    assert exp.run.seed == 3 and exp.tasks["fp"].weight == 2.0
    task = exp.tasks["fp"].task.build()
    assert task.cond_frames == 2 and task.padding.kind == "edge"
    decoder = exp.decoder.build()
    assert (decoder.steps, decoder.temperature, decoder.schedule) == (8, 1.0, "cosine")
    assert exp.decoder.build(steps=4).steps == 4


def test_every_problem_is_reported_with_its_path(toy_registries):
    with pytest.raises(ConfigError) as err:
        validate_experiment({
            "run": {"seed": "0"},
            "trian": {},
            "tasks": {"fp": {"weight": -1, "cond_frames": 1.5, "padding": {"kind": "edg"}},
                      "fpp": {}},
            "decoder": {"kind": "commit", "steps": 12.5, "temprature": 1},
        }, source="exp.toml")
    problems = err.value.problems
    assert "run.seed: expected int, got string '0'" in problems
    assert "trian: unknown key; did you mean 'train'?" in problems
    assert "tasks.fp.weight: expected a positive number, got -1" in problems
    assert "tasks.fp.cond_frames: expected int, got float 1.5" in problems
    assert any(p.startswith("tasks.fp.padding.kind: unknown padding 'edg'") and "Did you mean 'edge'?" in p
               for p in problems)
    assert any(p.startswith("tasks.fpp.kind: unknown task 'fpp'") and "'fp'" in p for p in problems)
    assert "decoder.steps: expected int, got float 12.5" in problems
    assert "decoder.temprature: unknown key; did you mean 'temperature'?" in problems
    assert len(problems) == 8
    assert str(err.value).startswith("8 problem(s) in exp.toml:")


@pytest.mark.parametrize("value, expected", [
    (True, "expected int, got bool True"),
    ("12", "expected int, got string '12'"),
    (12.0, "expected int, got float 12.0"),
])
def test_no_silent_coercion(toy_registries, value, expected):
    with pytest.raises(ConfigError) as err:
        validate_experiment({"decoder": {"kind": "commit", "steps": value}})
    assert err.value.problems == [f"decoder.steps: {expected}"]


def test_component_section_needs_a_kind(toy_registries):
    with pytest.raises(ConfigError) as err:
        validate_experiment({"decoder": {"steps": 3}})
    assert err.value.problems == ["decoder.kind: required key is missing; one of: commit"]


def test_extends_deep_merges_bases_in_order(tmp_path, toy_registries):
    write(tmp_path / "base.toml", '[run]\nname = "base"\nseed = 1\n[decoder]\nkind = "commit"\nsteps = 12\n')
    write(tmp_path / "mid.toml", 'extends = ["base.toml"]\n[decoder]\ntemperature = 2.0\n')
    exp_path = write(tmp_path / "exp.toml", 'extends = ["mid.toml"]\n[run]\nseed = 7\n')
    exp = load_experiment(exp_path)
    assert (exp.run.name, exp.run.seed) == ("base", 7)
    assert (exp.decoder.config.steps, exp.decoder.config.temperature) == (12, 2.0)


def test_a_table_that_names_another_kind_replaces_the_base_table(tmp_path):
    """The base's keys were the old plugin's config: switching `data.kind` in an experiment that
    extends another (or with --set) must not leave them for the new plugin to refuse."""
    base = {"data": {"kind": "synthetic", "train_clips": 64, "palette": 4},
            "tasks": {"fp": {"padding": {"kind": "edge"}, "weight": 2.0}}}
    write(tmp_path / "base.toml", 'extends = []\n[data]\nkind = "synthetic"\ntrain_clips = 64\npalette = 4\n'
          '[tasks.fp]\nweight = 2.0\npadding = {kind = "edge"}\n')
    write(tmp_path / "exp.toml", 'extends = ["base.toml"]\n[data]\nkind = "video_folder"\npath = "v"\n'
          '[tasks.fp.padding]\nkind = "zero"\n[tasks.fp]\ncond_frames = 2\n')
    from magvit.registry.toml_files import load_raw

    raw = load_raw(tmp_path / "exp.toml")
    assert raw["data"] == {"kind": "video_folder", "path": "v"}
    assert raw["tasks"]["fp"] == {"weight": 2.0, "cond_frames": 2, "padding": {"kind": "zero"}}
    # the same kind merges as before
    write(tmp_path / "same.toml", 'extends = ["base.toml"]\n[data]\nkind = "synthetic"\npalette = 2\n')
    assert load_raw(tmp_path / "same.toml")["data"] == {"kind": "synthetic", "train_clips": 64, "palette": 2}
    # --set: keys given by --set stay, whichever order they come in; the files' keys go
    fixed = apply_overrides(base, ["data.path=v", "data.kind=video_folder", "data.frames=4"])
    assert fixed["data"] == {"kind": "video_folder", "path": "v", "frames": 4}
    assert apply_overrides(base, ["data.kind=synthetic"])["data"] == base["data"]
    assert base["data"]["train_clips"] == 64  # the input is not modified


def _random_table(rng, depth: int) -> dict:
    table = {}
    if rng.random() < 0.5:
        table["kind"] = rng.choice(["a", "b"])
    for key in rng.sample("pqrs", rng.randint(0, 3)):
        table[key] = _random_table(rng, depth - 1) if depth and rng.random() < 0.5 else rng.randint(0, 9)
    return table


def _leaves(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        out.update(_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_merging_keeps_every_override_and_drops_base_keys_only_under_another_kind():
    """Property check over random nested tables: every leaf the override gives is in the result;
    a base leaf is kept unless the override replaces it or a table above it names another kind."""
    import random

    from magvit.registry.toml_files import deep_merge

    rng = random.Random(0)
    for _ in range(500):
        base, override = _random_table(rng, 3), _random_table(rng, 3)
        merged = _leaves(deep_merge(base, override))
        assert _leaves(override).items() <= merged.items()
        for path, value in _leaves(base).items():
            node, replaced = (base, override), False
            for part in path.split(".")[:-1]:
                b, o = node[0].get(part), node[1].get(part) if isinstance(node[1], dict) else None
                if not isinstance(o, dict):
                    replaced = o is not None
                    break
                if "kind" in b and "kind" in o and b["kind"] != o["kind"]:
                    replaced = True
                    break
                node = (b, o)
            else:
                replaced = path.split(".")[-1] in node[1]
            if replaced:
                assert path not in merged or path in _leaves(override), path
            else:
                assert merged.get(path) == value, path


def test_a_missing_key_of_a_plugin_is_named_once(tmp_path):
    exp = write(tmp_path / "exp.toml", 'extends = ["tiny"]\n[data]\nkind = "video_folder"\n')
    with pytest.raises(ConfigError) as err:
        load_experiment(exp)
    assert err.value.problems == ["data.path: required key is missing"]


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.toml", 'extends = ["b.toml"]\n')
    write(tmp_path / "b.toml", 'extends = ["a.toml"]\n')
    with pytest.raises(MagvitError, match="`extends` forms a cycle"):
        load_experiment(tmp_path / "a.toml")


def test_missing_and_invalid_files_are_named(tmp_path):
    with pytest.raises(MagvitError, match="experiment 'nope.toml' not found"):
        load_experiment("nope.toml")
    bad = write(tmp_path / "bad.toml", "[run\n")
    with pytest.raises(MagvitError, match=r"bad.toml is not valid TOML"):
        load_experiment(bad)


def test_overrides_are_toml_values_applied_before_validation(toy_registries):
    raw = {"decoder": {"kind": "commit", "steps": 12.5}}
    fixed = apply_overrides(raw, ["decoder.steps=8", "decoder.schedule=exp", "run.name=\"a b\""])
    assert raw["decoder"]["steps"] == 12.5  # the input is not modified
    exp = validate_experiment(fixed)
    assert (exp.decoder.config.steps, exp.decoder.config.schedule, exp.run.name) == (8, "exp", "a b")


@pytest.mark.parametrize("text, value", [
    ("12", 12), ("1e-4", 1e-4), ("true", True), ('"x"', "x"), ("[1, 2]", [1, 2]),
    ('{kind = "edge"}', {"kind": "edge"}), ("cosine", "cosine"), ("runs/a", "runs/a"),
])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_bad_overrides_are_reported_together():
    with pytest.raises(ConfigError) as err:
        apply_overrides({"run": {"name": "x"}}, ["nokey", "run.name.deep=1", "a.b=[1,"])
    problems = err.value.problems
    assert problems[0] == "--set 'nokey': expected KEY.PATH=VALUE, e.g. decoder.steps=8"
    assert problems[1] == "--set run.name.deep: run.name is a value, not a table"
    assert problems[2].startswith("--set a.b: '[1,' is not a TOML value")


def test_resolved_config_round_trips_and_records_plugins(tmp_path, toy_registries):
    exp = validate_experiment({"tasks": {"fp": {"padding": "edge"}}, "decoder": "commit"})
    path = write_resolved_config(exp, tmp_path / "run")
    data = tomllib.loads(path.read_text())
    assert data["plugins"] == {"toy": ""}
    assert data["decoder"] == {"kind": "commit", "steps": 12, "temperature": 4.5, "schedule": "cosine"}
    data.pop("plugins"), data.pop("resolved")
    assert validate_experiment(data) == validate_experiment(experiment_dict(exp))
    # the record reads back as the experiment it ran, as a file and as the base of another
    loaded = load_experiment(path)
    assert loaded.source == str(path)
    loaded.source = exp.source
    assert loaded == exp and load_experiment(path, ["decoder.steps=4"]).decoder.build().steps == 4
    child = write(tmp_path / "child.toml", f'extends = "{path.as_posix()}"\n[decoder]\nsteps = 6\n')
    assert load_experiment(child).decoder.build().steps == 6
    # without the [resolved] table it is not a record: a [plugins] table is an unknown key
    with pytest.raises(ConfigError) as err:
        load_experiment(write(tmp_path / "p.toml", '[plugins]\ntoy = ""\n[decoder]\nkind = "commit"\n'))
    assert err.value.problems[0].startswith("plugins: unknown key; known keys: run, data,")


def test_cli_validate_prints_every_problem_and_exits_2(tmp_path, capsys, toy_registries):
    bad = write(tmp_path / "bad.toml", '[decoder]\nkind = "commit"\nstpes = 8\ntemperature = "hot"\n')
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "decoder.stpes: unknown key; did you mean 'steps'?" in err
    assert "decoder.temperature: expected float, got string 'hot'" in err


def test_a_problem_from_set_names_its_override_and_a_file_problem_does_not(tmp_path, toy_registries):
    exp = write(tmp_path / "e.toml", '[decoder]\nkind = "commit"\ntemprature = 1\n')
    with pytest.raises(ConfigError) as err:
        load_experiment(exp, ["decoder.steps=2.5", "run={seed = 1, nmae = 'x'}", "train.lr=1e-4"])
    assert sorted(err.value.problems) == [
        "decoder.steps: expected int, got float 2.5 (from --set decoder.steps)",
        "decoder.temprature: unknown key; did you mean 'temperature'?",
        "run.nmae: unknown key; did you mean 'name'? (from --set run)",
    ]
    assert str(err.value).startswith(f"3 problem(s) in {exp} with its --set overrides:")
    # Without a --set among the problems the header names the file alone.
    with pytest.raises(ConfigError, match=r"^1 problem\(s\) in \S+e\.toml:\n") as err:
        load_experiment(exp, ["decoder.steps=3", "decoder.schedule=cosine"])
    assert err.value.problems == ["decoder.temprature: unknown key; did you mean 'temperature'?"]


@pytest.mark.parametrize("section", ["run", "train", "commit", "losses", "eval"])
@pytest.mark.parametrize("value, shown", [(3, "int 3"), ([1], "array [1]"), ("x", "string 'x'"), (True, "bool True")])
def test_a_section_given_a_value_instead_of_a_table_is_refused_by_name(section, value, shown, toy_registries):
    with pytest.raises(ConfigError) as err:
        validate_experiment({section: value})
    assert err.value.problems == [f"{section}: expected a table, got {shown}"]


def test_the_set_keys_are_not_a_toml_key_nor_written_out(tmp_path, toy_registries):
    exp = write(tmp_path / "e.toml", '[decoder]\nkind = "commit"\n')
    loaded = load_experiment(exp, ["decoder.steps=5"])
    assert loaded.set_keys == ("decoder.steps",) and "set_keys" not in experiment_dict(loaded)
    same = load_experiment(write(tmp_path / "f.toml", '[decoder]\nkind = "commit"\nsteps = 5\n'))
    same.source = loaded.source
    assert same == loaded and same.set_keys == ()  # where a value came from is not part of the experiment
    with pytest.raises(ConfigError) as err:
        validate_experiment({"set_keys": ["decoder.steps"]})
    assert err.value.problems[0].startswith("set_keys: unknown key; known keys: run, data,")
    assert "set_keys," not in err.value.problems[0] and "source" not in err.value.problems[0]


def test_a_problem_whose_message_names_a_set_key_is_told_it_came_from_it():
    from magvit.registry.experiment import config_error

    err = config_error([
        "train.warmup_steps: must be at most train.steps (1)",  # checked against the key set
        "train.warmup_steps: above train.steps.",  # named at a sentence's end
        "data.frames: checked against train.steps_total and my.train.steps",  # other keys that end or start alike
        "tasks.fp.weight: bad",  # below a key set: the path says so
    ], "e.toml", ["train.steps", "tasks.fp", "train.steps", "run"])
    assert err.problems == [
        "train.warmup_steps: must be at most train.steps (1) (from --set train.steps)",
        "train.warmup_steps: above train.steps. (from --set train.steps)",
        "data.frames: checked against train.steps_total and my.train.steps",
        "tasks.fp.weight: bad (from --set tasks.fp)",
    ]
    assert err.source == "e.toml with its --set overrides"
    both = config_error(["train.warmup_steps: must be at most train.steps (1)"], "e.toml",
                        ["train.steps", "train.warmup_steps"])
    assert both.problems == ["train.warmup_steps: must be at most train.steps (1) "
                             "(from --set train.steps, --set train.warmup_steps)"]
    # a one-word key is matched by path only: "run" in a sentence is not the [run] table
    untouched = config_error(["tokenizer.checkpoint: train a run first"], "e.toml", ["run"])
    assert untouched.problems == ["tokenizer.checkpoint: train a run first"] and untouched.source == "e.toml"
    # an unknown table a --set made, and a key missing from the plugin a --set chose
    made = config_error(["zzz: unknown key; known keys: run", "data.path: required key is missing",
                         "data.frames: required key is missing", "zzz: must be a table"], "e.toml",
                        ["zzz.a", "data.kind"])
    assert made.problems == ["zzz: unknown key; known keys: run (from --set zzz.a)",
                             "data.path: required key is missing (from --set data.kind)",
                             "data.frames: required key is missing (from --set data.kind)",
                             "zzz: must be a table"]
    other_table = config_error(["tokenizer.path: required key is missing"], "e.toml", ["data.kind"])
    assert other_table.problems == ["tokenizer.path: required key is missing"]


def test_where_an_experiment_came_from_is_not_a_toml_key(tmp_path, toy_registries):
    # `source` is set by the code that reads the file; a TOML key of that name was dropped unread
    with pytest.raises(ConfigError) as err:
        load_experiment(write(tmp_path / "e.toml", 'source = "elsewhere.toml"\n[decoder]\nkind = "commit"\n'))
    assert err.value.problems == ["source: unknown key; known keys: run, data, tokenizer, transformer, tasks, "
                                  "decoder, train, commit, losses, eval"]
    loaded = load_experiment(write(tmp_path / "f.toml", '[decoder]\nkind = "commit"\n'))
    assert loaded.source == str(tmp_path / "f.toml") and "source" not in experiment_dict(loaded)


def test_cli_show_applies_overrides(tmp_path, capsys, toy_registries):
    exp = write(tmp_path / "e.toml", '[decoder]\nkind = "commit"\n')
    assert main(["config", "show", str(exp), "--set", "decoder.steps=5"]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert shown["decoder"]["steps"] == 5 and shown["run"]["seed"] == 0


def test_cli_bad_input_exits_2_without_traceback(capsys, toy_registries):
    assert main(["registry", "list", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("magvit: error: no registry 'nonsense'") and "Traceback" not in err
