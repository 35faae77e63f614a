"""The plugin manager: one hook per registry, failures reported not fatal, block/allow lists."""

from __future__ import annotations

import inspect
import types

import attrs
import pytest

import magvit
from magvit.errors import PluginLoadError
from magvit.registry import KINDS, hookspecs, load_registries


def plugin_for(kind: str, name: str = "x"):
    hook = magvit.hookimpl(lambda registry: registry.add(name, dict))
    return types.SimpleNamespace(**{hookspecs.hook_name(kind): hook})


def only(*plugins, env=None):
    return load_registries(builtins=False, entry_points=False, extra_plugins=plugins, env=env or {})


def test_every_hookspec_is_a_registry_kind():
    specs = {n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("magvit_")}
    assert specs == {hookspecs.hook_name(k) for k in KINDS}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_hookspec_registers_into_its_registry(kind):
    regs = only((f"p-{kind}", plugin_for(kind, "mine")))
    assert regs[kind].names() == ["mine"]
    assert getattr(regs, kind) is regs[kind]
    others = [k for k in KINDS if k != kind]
    assert all(len(regs[k]) == 0 for k in others)
    assert regs.plugins[0].registered == {kind: ["mine"]}


def test_misspelled_hook_is_reported_and_the_plugin_skipped():
    typo = types.SimpleNamespace(magvit_register_schedule=magvit.hookimpl(lambda registry: None))
    regs = only(("typo", typo), ("good", plugin_for("schedules", "cosine")))
    assert regs.schedules.names() == ["cosine"]
    (failure,) = regs.failures
    assert failure.plugin == "typo" and failure.stage == "hooks"
    assert "magvit_register_schedule" in failure.error


def test_plugin_that_raises_while_registering_is_reported():
    def boom(registry):
        registry.add("half", dict)
        raise RuntimeError("cannot register")

    bad = types.SimpleNamespace(magvit_register_tasks=magvit.hookimpl(boom))
    regs = only(("bad", bad), ("good", plugin_for("tasks", "fp")))
    assert regs.tasks.names() == ["fp"]  # nothing of the failed plugin landed
    assert [str(f) for f in regs.failures] == [
        "bad (bad) failed to register: RuntimeError: cannot register"
    ]


def test_duplicate_name_from_a_second_plugin_is_a_reported_failure():
    regs = only(("first", plugin_for("schedules", "cosine")), ("second", plugin_for("schedules", "cosine")))
    assert regs.schedules.entry("cosine").plugin.name == "first"
    (failure,) = regs.failures
    assert "registered twice" in failure.error and "first" in failure.error and "second" in failure.error


def test_strict_mode_makes_failures_fatal():
    bad = types.SimpleNamespace(magvit_register_nothing=magvit.hookimpl(lambda registry: None))
    with pytest.raises(PluginLoadError, match="MAGVIT_STRICT_PLUGINS"):
        only(("bad", bad), env={"MAGVIT_STRICT_PLUGINS": "1"})


def test_block_list_and_allow_list():
    a, b = ("a", plugin_for("tasks", "ta")), ("b", plugin_for("tasks", "tb"))
    assert only(a, b, env={"MAGVIT_BLOCK_PLUGINS": "a"}).tasks.names() == ["tb"]
    allowed = only(a, b, env={"MAGVIT_LOAD_PLUGINS": "b"})
    assert allowed.tasks.names() == ["tb"] and allowed.blocked == ["a"]
    assert only(a, b, env={"MAGVIT_LOAD_PLUGINS": ""}).tasks.names() == []


def test_builtins_can_be_blocked_by_module_name():
    regs = load_registries(entry_points=False, env={"MAGVIT_BLOCK_PLUGINS": "magvit"})
    assert all(len(regs[k]) == 0 for k in KINDS)


def test_unknown_registry_attribute_names_the_kinds():
    with pytest.raises(AttributeError, match="registries are: tokenizers, quantizers, transformers"):
        only().schedulez  # noqa: B018


def test_global_registries_load_the_builtins_once():
    regs = magvit.registries()
    assert regs is magvit.registries()
    assert not regs.failures, [str(f) for f in regs.failures]
    assert all(p.info.distribution == "magvit" for p in regs.plugins if p.builtin)


def test_a_task_whose_padding_plugin_is_blocked_fails_at_load_time_naming_both():
    regs = load_registries(entry_points=False, env={"MAGVIT_BLOCK_PLUGINS": "magvit.plugins.paddings"})
    assert regs.tasks.names() == ["cg"]  # the only task that needs no padding
    by_task = {f.error.split("'")[1]: f for f in regs.failures}
    assert sorted(by_task) == ["cfp", "fi", "fp", "ipc", "ipd", "opc", "opd", "oph", "opv"]
    fp = by_task["fp"]
    assert fp.plugin == "magvit.plugins.tasks" and fp.stage == "resolve"
    assert "needs padding 'edge'" in fp.error and "blocked: magvit.plugins.paddings" in fp.error
    loaded = {p.info.name: p for p in regs.plugins}
    assert loaded["magvit.plugins.tasks"].registered == {"tasks": ["cg"]}


def test_strict_mode_refuses_a_blocked_requirement():
    with pytest.raises(PluginLoadError, match=r"task '\w+' needs padding '\w+'.*MAGVIT_STRICT_PLUGINS"):
        load_registries(entry_points=False, env={"MAGVIT_BLOCK_PLUGINS": "magvit.plugins.paddings",
                                                 "MAGVIT_STRICT_PLUGINS": "1"})


def test_a_third_party_task_naming_a_missing_padding_is_dropped():
    from magvit import api

    @attrs.define
    class NeedsFancy(api.Task):
        name = "needs-fancy"
        padding: api.PaddingComponent = api.padding("fancy")

        def pixel_mask(self, shape):
            return api.regions.first_last_frames(shape, 1, 0)

    plugin = types.SimpleNamespace(
        magvit_register_tasks=magvit.hookimpl(lambda registry: registry.add("needs-fancy", NeedsFancy)))
    regs = load_registries(entry_points=False, extra_plugins=[("fancy-task", plugin)], env={})
    assert "needs-fancy" not in regs.tasks and "fp" in regs.tasks
    (failure,) = regs.failures
    assert failure.plugin == "fancy-task"
    assert "task 'needs-fancy' needs padding 'fancy', which no loaded plugin registers;" in failure.error
