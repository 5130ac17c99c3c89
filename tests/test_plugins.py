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


def test_duplicate_component_names_fail_only_where_used_naming_both(fake_site, h):
    h.make_fake_dist(fake_site, "satcore-dupa", "dupa", "fake_satcore_dupa", DUP.format(name="same-name"))
    h.make_fake_dist(fake_site, "satcore-dupb", "dupb", "fake_satcore_dupb", DUP.format(name="same-name"))
    pm = get_plugin_manager(fresh=True)
    cat = pm.catalogue()  # listing does not fail: the other components stay usable
    assert "same-name" not in cat["detector"] and "folder-pairs" in cat["source"]
    assert [c.distribution for c in pm.clashes["detector"]["same-name"]] == ["satcore-dupa", "satcore-dupb"]
    with pytest.raises(PluginConflictError) as ei:
        pm.get_component("same-name", ("detector",))
    msg = str(ei.value)
    assert "two plugins register a detector named 'same-name'" in msg
    assert "'dupa' (satcore-dupa" in msg and "'dupb' (satcore-dupb" in msg
    assert "`type: dupa:same-name` or `type: dupb:same-name`" in msg
    assert "SATCORE_DISABLE_PLUGINS" in msg
    # the qualified forms choose, by plugin (entry-point) name or by distribution name
    a, b = pm.get_component("dupa:same-name"), pm.get_component("satcore-dupb:same-name")
    assert a is not b and (a.distribution, b.distribution) == ("satcore-dupa", "satcore-dupb")
    assert pm.clash_messages() == [msg]


def test_uninstalled_catalogued_type_names_its_package(pm):
    with pytest.raises(UnknownComponentError) as ei:
        pm.get_component("clip-zeroshot", ("extractor", "detector"))
    assert str(ei.value) == ("step type 'clip-zeroshot' is provided by satcore-clip, which is not installed: "
                             "pip install -e plugins/satcore-clip")
    with pytest.raises(UnknownComponentError, match="did you mean 'test-diff'"):
        pm.get_component("test-dif", ("detector",))


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
