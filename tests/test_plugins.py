"""Plugin discovery through (fake) distributions: failures reported, conflicts named, escape hatches."""

from __future__ import annotations

import pytest

from satcore.errors import PluginConflictError, UnknownComponentError
from satcore.plugins import get_plugin_manager

BROKEN = """
raise RuntimeError("boom: this plugin is broken on purpose")
"""

DUP = '''
import satcore
from satcore.components import Detector


class OtherCVA(Detector):
    """A second `cva`."""

    name = "{name}"


@satcore.hookimpl
def satcore_register_detectors():
    return [OtherCVA]
'''


def test_entry_point_discovery_and_load_failure_is_not_fatal(fake_site, h):
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE, "1.2.3")
    h.make_fake_dist(fake_site, "satcore-broken", "broken", "fake_satcore_broken", BROKEN)
    pm = get_plugin_manager(fresh=True)
    assert pm.info["slow"].distribution == "satcore-slow" and pm.info["slow"].version == "1.2.3"
    cls = pm.get_component("slow-diff")
    assert cls.plugin_name == "slow" and cls.distribution == "satcore-slow"
    (err,) = [e for e in pm.load_errors if e.name == "broken"]
    assert err.distribution == "satcore-broken"
    assert isinstance(err.exception, RuntimeError)
    assert str(err) == (
        "plugin 'broken' (distribution satcore-broken) failed to load: RuntimeError: boom: this "
        "plugin is broken on purpose"
    )
    assert "broken" not in pm.info


def test_duplicate_component_names_raise_naming_both(fake_site, h):
    h.make_fake_dist(fake_site, "satcore-dupa", "dupa", "fake_satcore_dupa", DUP.format(name="same-name"))
    h.make_fake_dist(fake_site, "satcore-dupb", "dupb", "fake_satcore_dupb", DUP.format(name="same-name"))
    pm = get_plugin_manager(fresh=True)
    with pytest.raises(PluginConflictError) as ei:
        pm.catalogue()
    msg = str(ei.value)
    assert "two plugins register a detector named 'same-name'" in msg
    assert "'dupa' (satcore-dupa" in msg and "'dupb' (satcore-dupb" in msg
    assert "SATCORE_DISABLE_PLUGINS" in msg


def test_load_and_disable_env(fake_site, h, monkeypatch):
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE)
    h.make_fake_dist(fake_site, "satcore-broken", "broken", "fake_satcore_broken", BROKEN)
    monkeypatch.setenv("SATCORE_DISABLE_PLUGINS", "broken")
    pm = get_plugin_manager(fresh=True)
    assert "slow" in pm.info and not pm.load_errors
    monkeypatch.delenv("SATCORE_DISABLE_PLUGINS")
    monkeypatch.setenv("SATCORE_LOAD_PLUGINS", "slow")
    pm = get_plugin_manager(fresh=True)
    assert set(pm.info) == {"satcore", "slow"} and not pm.load_errors
    monkeypatch.setenv("SATCORE_LOAD_PLUGINS", "")  # empty = only the built-ins
    pm = get_plugin_manager(fresh=True)
    assert set(pm.info) == {"satcore"}
    assert sorted(pm.components("source")) == ["folder-classes", "folder-pairs", "geotiff-series", "manifest",
                                               "text"]
    with pytest.raises(UnknownComponentError, match="unknown step type 'slow-diff'; installed: none"):
        pm.get_component("slow-diff", ("detector",))


def test_hook_that_raises_is_reported_not_fatal(h):
    def bad():
        raise ValueError("listing failed")

    import satcore

    pm = get_plugin_manager(fresh=True, entrypoints=False)
    mod = h.plugin_module("fake_raiser")
    mod.satcore_register_detectors = satcore.hookimpl(bad)
    pm.register_plugin(mod, "raiser", "satcore-raiser")
    assert sorted(pm.components("source")) == ["folder-classes", "folder-pairs", "geotiff-series", "manifest",
                                               "text"]
    (err,) = pm.load_errors
    assert err.name == "raiser" and "ValueError: listing failed" in str(err)


def test_misspelt_hook_name_fails_that_plugin_only(h, fake_site):
    src = "import satcore\n\n@satcore.hookimpl\ndef satcore_register_detector():\n    return []\n"
    h.make_fake_dist(fake_site, "satcore-typo", "typo", "fake_satcore_typo", src)
    h.make_fake_dist(fake_site, "satcore-slow", "slow", "fake_satcore_slow", h.DIFF_PLUGIN_SOURCE)
    pm = get_plugin_manager(fresh=True)
    (err,) = [e for e in pm.load_errors if e.name == "typo"]
    assert err.distribution == "satcore-typo"
    assert "unknown hook 'satcore_register_detector'" in str(err)
    assert str(err).endswith("— did you mean 'satcore_register_detectors'?")
    assert "typo" not in pm.info and pm.get_plugin("typo") is None
    assert pm.get_component("slow-diff").plugin_name == "slow"  # the others load
