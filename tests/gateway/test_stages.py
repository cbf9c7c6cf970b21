"""The gateway's stage registry (konspekt_gateway.stages) is the one list the settings, the
pipeline, the job view and the page's texts read: every stage has its settings, and the names,
states and defaults are the ones the gateway had before there was a registry."""

from __future__ import annotations

import pytest

from konspekt.notices import Note
from konspekt_gateway import i18n, stages
from konspekt_gateway.jobs import JobState
from konspekt_gateway.settings import GatewaySettings


def test_order_and_ids() -> None:
    assert stages.STAGES == ("audio", "asr", "summarizer", "renderer")
    assert [s.id for s in stages.REGISTRY] == list(stages.STAGES)


def test_every_stage_has_its_settings_with_the_registry_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(GatewaySettings.model_fields):
        monkeypatch.delenv(f"KONSPEKT_GATEWAY_{name.upper()}", raising=False)
    settings = GatewaySettings()
    fields = GatewaySettings.model_fields
    for info in stages.REGISTRY:
        for suffix in ("target", "concurrency", "deadline_base", "deadline_per_second"):
            assert f"{info.id}_{suffix}" in fields, (info.id, suffix)
        assert settings.target(info.id) == info.default_target
        assert settings.concurrency(info.id) == info.default_concurrency
        assert settings.deadline(info.id, 10.0) == pytest.approx(
            info.default_deadline_base + 10.0 * info.default_deadline_per_second
        )
    # the defaults as they were before the registry (README's table)
    assert [settings.target(s) for s in stages.STAGES] == [f"127.0.0.1:5005{i}" for i in range(1, 5)]
    assert [settings.concurrency(s) for s in stages.STAGES] == [2, 1, 1, 2]
    assert [settings.deadline(s, 0.0) for s in stages.STAGES] == [60.0, 120.0, 300.0, 60.0]
    assert [settings.deadline(s, 1.0) - settings.deadline(s, 0.0) for s in stages.STAGES] == [
        0.5,
        2.0,
        1.0,
        0.0,
    ]


def test_a_bad_target_of_any_stage_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for stage in stages.STAGES:
        monkeypatch.setenv(f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET", "not a target")
        with pytest.raises(ValueError, match="not a gRPC target"):
            GatewaySettings()
        monkeypatch.delenv(f"KONSPEKT_GATEWAY_{stage.upper()}_TARGET")


def test_states_and_outputs() -> None:
    assert [s.state for s in stages.REGISTRY] == [
        JobState.EXTRACTING_AUDIO,
        JobState.TRANSCRIBING,
        JobState.SUMMARIZING,
        JobState.RENDERING,
    ]
    assert [s.output for s in stages.REGISTRY] == ["audio", "transcript", "konspekt", ""]
    for info in stages.REGISTRY:
        assert stages.running_in(info.state) is info
    for state in (JobState.QUEUED, JobState.DONE, JobState.FAILED):
        assert stages.running_in(state) is None


def test_names_on_the_page_are_unchanged() -> None:
    assert {s: (i18n.stage_text(s, "en"), i18n.stage_text(s, "ru")) for s in stages.STAGES} == {
        "audio": ("audio extraction", "извлечение звука"),
        "asr": ("speech recognition", "распознавание речи"),
        "summarizer": ("summarizing", "составление конспекта"),
        "renderer": ("document rendering", "подготовка документов"),
    }
    assert i18n.stage_text("nonsense", "ru") == "nonsense"


def test_failure_reasons_name_the_stage_in_russian() -> None:
    for info in stages.REGISTRY:
        text = i18n.reason(Note("stage_timeout", stage=info.reason_name, seconds="60"), "ru")
        assert info.name_ru in text, text
