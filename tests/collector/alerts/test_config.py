"""Alerts config: the example loads and documents the defaults; mistakes get one line each."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from collector.alerts.channels.factory import build_channels, build_dispatcher
from collector.alerts.channels.transports import EmailChannel, MqttChannel, WebhookChannel
from collector.alerts.config import (
    AlertsConfig,
    ExpectedConfig,
    RulesConfig,
    load_alerts_config,
    parse_duration,
)
from collector.alerts.inhibition import DEFAULT_INHIBIT_RULES
from sparwatt.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "alerts.example.toml"


def _load(tmp_path: Path, text: str) -> AlertsConfig:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return load_alerts_config(path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    return err.value.problems


def test_example_config_loads():
    cfg = load_alerts_config(EXAMPLE)
    assert cfg.receivers_for("aarhus-plant") == ["dashboard", "ops-mail", "aarhus-oncall"]
    assert cfg.receivers_for("odense-office") == ["dashboard", "ops-mail"]
    assert [s.id for s in cfg.silence_list()] == ["aarhus-summer-shutdown-2025"]


def test_example_config_states_the_real_defaults():
    raw = tomllib.loads(EXAMPLE.read_text())
    assert RulesConfig.model_validate(raw["rules"]) == RulesConfig()
    assert ExpectedConfig.model_validate(raw["expected"]) == ExpectedConfig()
    loaded = load_alerts_config(EXAMPLE).inhibit_rules()
    assert [(r.source, r.target, r.equal) for r in loaded] == [
        (r.source, r.target, r.equal) for r in DEFAULT_INHIBIT_RULES
    ]


def test_empty_config_is_valid_and_uses_defaults(tmp_path):
    cfg = _load(tmp_path, "")
    assert cfg.rules.unusual_usage.for_ == 900
    assert cfg.inhibit_rules() == DEFAULT_INHIBIT_RULES
    assert cfg.receivers_for("any") == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), (60, 60)],
)
def test_duration_forms(text, seconds):
    assert parse_duration(text) == seconds


def test_unknown_key_names_file_and_key_path(tmp_path):
    (line,) = _problems(tmp_path, "[rules.unusual_usage]\nz_treshold = 3\n")
    assert line.startswith(str(tmp_path / "alerts.toml"))
    assert "rules.unusual_usage.z_treshold" in line
    assert "Extra inputs" in line


def test_bad_duration_is_one_line(tmp_path):
    (line,) = _problems(tmp_path, '[rules.meter_silent]\nafter = "half an hour"\n')
    assert "rules.meter_silent.after" in line
    assert "half an hour" in line


def test_secret_in_webhook_headers_is_refused(tmp_path):
    text = """
[receivers.hook]
type = "webhook"
url = "https://example.com/x"
headers = { Authorization = "Bearer abc" }
"""
    (line,) = _problems(tmp_path, text)
    assert "bearer_token_file" in line


def test_login_without_starttls_is_refused(tmp_path):
    text = """
[receivers.mail]
type = "email"
host = "smtp.example.com"
starttls = false
username = "me"
password_file = "pw"
sender = "a@example.com"
recipients = ["b@example.com"]
"""
    (line,) = _problems(tmp_path, text)
    assert "in clear" in line


def test_unknown_receivers_are_each_reported(tmp_path):
    text = """
default_receivers = ["nobody"]
[sites.s1]
receivers = ["ghost"]
"""
    problems = _problems(tmp_path, text)
    assert len(problems) == 2
    assert any("default_receivers" in p and "'nobody'" in p for p in problems)
    assert any("sites.s1.receivers" in p and "'ghost'" in p for p in problems)


def test_silence_needs_an_offset_and_valid_matchers(tmp_path):
    text = """
[[silences]]
id = "x"
starts_at = 2025-07-14T06:00:00
ends_at = 2025-07-15T06:00:00+02:00
matchers = ['site=aarhus']
"""
    problems = _problems(tmp_path, text)
    assert any("silences[0].starts_at" in p and "UTC offset" in p for p in problems)
    assert any("silences[0].matchers" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "key", "new_home"),
    [
        ('[calendar]\ntimezone = "Europe/Copenhagen"\n', "calendar.timezone", "timezone"),
        ('[calendar]\nholiday_country = "DK"\n', "calendar.holiday_country", "holidays.country"),
        (
            "[calendar]\nextra_closed_days = [2025-12-24]\n",
            "calendar.extra_closed_days",
            "holidays.extra",
        ),
        ('[expected]\nholidays_as = "skip"\n', "expected.holidays_as", "holidays.treat_as"),
        (
            '[sites.aarhus-plant]\nfuse_a = 250\nreceivers = ["ops"]\n[receivers.ops]\n'
            'type = "mqtt"\n',
            "sites.aarhus-plant.fuse_a",
            "main_fuse_a under [sites.aarhus-plant]",
        ),
    ],
)
def test_a_key_moved_to_the_sites_file_gets_one_line_saying_where(tmp_path, text, key, new_home):
    (line,) = _problems(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'alerts.toml'}: {key}: moved to the sites file")
    assert new_home in line
    assert "Extra inputs" not in line


def test_moved_keys_and_other_mistakes_are_all_reported(tmp_path):
    text = '[calendar]\ntimezone = "Europe/Copenhagen"\n[rules.meter_silent]\nafter = "soon"\n'
    problems = _problems(tmp_path, text)
    assert len(problems) == 2
    assert "calendar.timezone: moved to the sites file" in problems[0]
    assert "rules.meter_silent.after" in problems[1]


def test_min_weeks_cannot_exceed_weeks(tmp_path):
    (line,) = _problems(tmp_path, "[expected]\nweeks = 4\nmin_weeks = 5\n")
    assert "min_weeks" in line


CHANNELS = """
default_receivers = ["dash", "hook", "mail"]
[receivers.dash]
type = "mqtt"
[receivers.hook]
type = "webhook"
url = "https://example.com/x"
bearer_token_file = "token"
[receivers.mail]
type = "email"
host = "smtp.example.com"
username = "me"
password_file = "secrets/pw"
sender = "a@example.com"
recipients = ["b@example.com"]
"""


def test_channels_are_built_with_secret_paths_next_to_the_config(tmp_path):
    (tmp_path / "token").write_text("t")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("p")
    cfg = _load(tmp_path, CHANNELS)
    channels = build_channels(cfg, publish=lambda *a: None)
    assert isinstance(channels["dash"], MqttChannel)
    assert isinstance(channels["hook"], WebhookChannel)
    assert isinstance(channels["mail"], EmailChannel)
    assert channels["mail"].password_file == tmp_path / "secrets" / "pw"
    assert build_dispatcher(cfg, channels) is not None
    channels["hook"].close()


def test_unreadable_secrets_and_missing_mqtt_stop_start_up(tmp_path):
    cfg = _load(tmp_path, CHANNELS)
    with pytest.raises(ConfigError) as err:
        build_channels(cfg, publish=None)
    problems = err.value.problems
    assert len(problems) == 3
    assert any("receivers.dash" in p and "MQTT" in p for p in problems)
    assert any("receivers.hook.bearer_token_file" in p for p in problems)
    assert any("receivers.mail.password_file" in p for p in problems)
