"""Loading the config: defaults, environment overrides, key sources and located problems."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from exporter.config.messages import describe
from exporter.config.settings import (
    CONFIG_ENV,
    DEFAULT_PORT,
    ConfigError,
    Problem,
    Settings,
    config_path,
    load_settings,
    misspelt_variables,
    parse_listen,
)
from tests.harness import alias_bomb

KEY = "sk-test-7f3a9c1e5b2d4086"
OTHER_KEY = "sk-test-other-0d1e2f3a4b"
KEY_ENV = "SESSION_EXPORTER_TEST_KEY"
PROVIDERS = "together, agi, trigger, chaser, notte, e2b, browserbase, daytona, runloop, steel"
"""The contract's provider ids, in order."""
ENV_VARS = (
    "SESSION_EXPORTER_POLL_INTERVAL",
    "SESSION_EXPORTER_STALE_AFTER",
    "SESSION_EXPORTER_LISTEN",
    "SESSION_EXPORTER_LOG_LEVEL",
    "SESSION_EXPORTER_TARGETS",
    CONFIG_ENV,
    KEY_ENV,
)

BOOLEAN_HINT = "(YAML reads yes/no/on/off/true/false as booleans: quote the value)"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SESSION_EXPORTER_* override from the developer's shell leaks into these tests."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    """Write a dedented YAML config and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    """Every problem load_settings reports for ``path``, rendered as check-config prints it."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return [str(p) for p in caught.value.problems]


ONE_TARGET = f"""
targets:
  - name: c1
    provider: chaser
    api_key: "{KEY}"
"""


# --- defaults and per-target overrides -------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    """A minimal config gets a 30s interval, the documented listen port and 3x staleness."""
    settings = load_settings(write(tmp_path, ONE_TARGET))
    target = settings.targets[0]
    assert 30.0 == settings.poll_interval
    assert f"0.0.0.0:{DEFAULT_PORT}" == settings.listen
    assert ("0.0.0.0", DEFAULT_PORT) == parse_listen(settings.listen)  # noqa: S104
    assert 30.0 == settings.interval(target)
    assert 90.0 == settings.staleness(target)
    assert "info" == settings.log_level
    assert 10.0 == target.timeout
    assert "https://api.chaser.sh" == target.url


def test_durations_in_file_are_parsed(tmp_path: Path) -> None:
    """Durations in the file accept units and plain seconds alike."""
    path = write(
        tmp_path,
        f"""
        poll_interval: 1m30s
        listen: "127.0.0.1:9000"
        targets:
          - name: n1
            provider: notte
            api_key: "{KEY}"
            timeout: 500ms
        """,
    )
    settings = load_settings(path)
    assert 90.0 == settings.poll_interval
    assert 0.5 == settings.targets[0].timeout
    assert 270.0 == settings.staleness(settings.targets[0])
    assert ("127.0.0.1", 9000) == parse_listen(settings.listen)


def test_per_target_interval_and_staleness(tmp_path: Path) -> None:
    """A target's own poll_interval and stale_after win; others follow the global values."""
    path = write(
        tmp_path,
        f"""
        poll_interval: 20s
        targets:
          - name: own-interval
            provider: chaser
            api_key: "{KEY}"
            poll_interval: 5s
          - name: own-both
            provider: notte
            api_key: "{KEY}"
            poll_interval: 1m
            stale_after: 2m
          - name: global
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    settings = load_settings(path)
    own_interval, own_both, glob = settings.targets
    assert 5.0 == settings.interval(own_interval)
    assert 15.0 == settings.staleness(own_interval)
    assert 60.0 == settings.interval(own_both)
    assert 120.0 == settings.staleness(own_both)
    assert 20.0 == settings.interval(glob)
    assert 60.0 == settings.staleness(glob)


def test_global_stale_after_applies_to_targets_without_their_own(tmp_path: Path) -> None:
    """A global stale_after replaces the 3x default, but not a target's own stale_after."""
    path = write(
        tmp_path,
        f"""
        poll_interval: 10s
        stale_after: 5m
        targets:
          - name: a
            provider: chaser
            api_key: "{KEY}"
          - name: b
            provider: chaser
            api_key: "{KEY}"
            stale_after: 45s
        """,
    )
    settings = load_settings(path)
    assert 300.0 == settings.staleness(settings.targets[0])
    assert 45.0 == settings.staleness(settings.targets[1])


def test_provider_specific_options(tmp_path: Path) -> None:
    """Provider options (Chaser page_size, Notte only_active) are read with their defaults."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: c
            provider: chaser
            api_key: "{KEY}"
            page_size: 7
          - name: n
            provider: notte
            api_key: "{KEY}"
            base_url: http://127.0.0.1:8080/
          - name: n2
            provider: notte
            api_key: "{KEY}"
            only_active: false
        """,
    )
    chaser, notte, notte_all = load_settings(path).targets
    assert "chaser" == chaser.provider
    assert 7 == getattr(chaser, "page_size", None)
    assert "notte" == notte.provider
    assert True is getattr(notte, "only_active", None)
    assert "http://127.0.0.1:8080" == notte.url
    assert "https://api.notte.cc" == notte_all.url
    assert False is getattr(notte_all, "only_active", None)


# --- environment overrides -------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SESSION_EXPORTER_POLL_INTERVAL and _LISTEN win over the file's values."""
    path = write(tmp_path, 'poll_interval: 30s\nlisten: "127.0.0.1:9000"\n' + ONE_TARGET)
    monkeypatch.setenv("SESSION_EXPORTER_POLL_INTERVAL", "10s")
    monkeypatch.setenv("SESSION_EXPORTER_LISTEN", ":9100")
    settings = load_settings(path)
    assert 10.0 == settings.poll_interval
    assert ":9100" == settings.listen
    assert ("0.0.0.0", 9100) == parse_listen(settings.listen)  # noqa: S104
    assert 30.0 == settings.staleness(settings.targets[0])


def test_targets_from_environment_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SESSION_EXPORTER_TARGETS as a JSON list replaces the file's whole target list."""
    path = write(tmp_path, ONE_TARGET)
    targets = [
        {"name": "env-n", "provider": "notte", "api_key": KEY, "poll_interval": "15s"},
        {"name": "env-c", "provider": "chaser", "api_key": KEY},
    ]
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS", json.dumps(targets))
    settings = load_settings(path)
    assert ["env-n", "env-c"] == [t.name for t in settings.targets]
    assert 15.0 == settings.interval(settings.targets[0])


def test_environment_alone_can_supply_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file without targets is complete when the environment gives them."""
    path = write(tmp_path, "poll_interval: 5s\n")
    monkeypatch.setenv(
        "SESSION_EXPORTER_TARGETS",
        json.dumps([{"name": "c", "provider": "chaser", "api_key": KEY}]),
    )
    assert ["c"] == [t.name for t in load_settings(path).targets]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "SESSION_EXPORTER_POLL_INTERVAL",
            "5x",
            "environment SESSION_EXPORTER_POLL_INTERVAL: poll_interval: invalid duration '5x': "
            "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s",
        ),
        (
            "SESSION_EXPORTER_LISTEN",
            "nowhere",
            "environment SESSION_EXPORTER_LISTEN: listen: listen must be HOST:PORT, got 'nowhere'",
        ),
        (
            "SESSION_EXPORTER_TARGETS",
            json.dumps([{"name": "x", "provider": "notte", "api_key": "k", "timeout": "zz"}]),
            "environment SESSION_EXPORTER_TARGETS: targets[0].timeout: invalid duration 'zz': "
            "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s",
        ),
        (
            "SESSION_EXPORTER_TARGETS",
            json.dumps({"name": "x"}),
            "environment SESSION_EXPORTER_TARGETS: targets: must be a list "
            "(one `- item` per line, or [a, b]), not a mapping",
        ),
    ],
)
def test_bad_environment_value_is_located_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    """A bad override names its environment variable, not a line of the file."""
    monkeypatch.setenv(name, value)
    assert [expected] == problems(write(tmp_path, ONE_TARGET))


def test_unparsable_targets_json_is_a_located_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SESSION_EXPORTER_TARGETS that is not JSON is a ConfigError naming the variable.

    (It must not escape load_settings as pydantic-settings' own SettingsError, which
    carries no location and bypasses the problem list.)
    """
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS", "not json")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, ONE_TARGET))
    assert [
        "environment SESSION_EXPORTER_TARGETS: targets: "
        "cannot parse the value: a list or mapping must be valid JSON"
    ] == [str(p) for p in caught.value.problems]


def test_env_problem_and_file_problem_are_both_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environment problems come first, then the file's, all in one ConfigError."""
    monkeypatch.setenv("SESSION_EXPORTER_POLL_INTERVAL", "0")
    path = write(
        tmp_path,
        f"""
        targets:
          - name: c1
            provider: chaser
            api_key: "{KEY}"
            timeout: soon
        """,
    )
    assert [
        "environment SESSION_EXPORTER_POLL_INTERVAL: poll_interval: must be longer than 0s",
        f"{path}:5:14: targets[0].timeout: invalid duration 'soon': "
        "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s",
    ] == problems(path)


# --- key sources -----------------------------------------------------------------------


def key_target(tmp_path: Path, source: str) -> Path:
    """A one-target config whose key comes from ``source`` (a YAML line)."""
    return write(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: notte
            {source}
        """,
    )


def test_api_key_env_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key_env reads the named variable, and re-reads it on each secret() call."""
    monkeypatch.setenv(KEY_ENV, KEY)
    target = load_settings(key_target(tmp_path, f"api_key_env: {KEY_ENV}")).targets[0]
    assert KEY == target.secret().get_secret_value()
    monkeypatch.setenv(KEY_ENV, OTHER_KEY)
    assert OTHER_KEY == target.secret().get_secret_value()


@pytest.mark.parametrize("value", [None, "", "   "])
def test_api_key_env_unset_or_empty_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """An unset, empty or blank api_key_env variable is reported at the key's line."""
    if value is not None:
        monkeypatch.setenv(KEY_ENV, value)
    path = key_target(tmp_path, f"api_key_env: {KEY_ENV}")
    assert [
        f"{path}:4:18: targets[0].api_key_env: environment variable {KEY_ENV} "
        "named by api_key_env is unset or empty"
    ] == problems(path)


def test_api_key_file_strips_trailing_newline(tmp_path: Path) -> None:
    """A key file's surrounding whitespace (the usual trailing newline) is not part of the key."""
    key_file = tmp_path / "key"
    key_file.write_text(f"  {KEY}\n", encoding="utf-8")
    target = load_settings(key_target(tmp_path, f"api_key_file: {key_file}")).targets[0]
    assert KEY == target.secret().get_secret_value()
    key_file.write_text(f"{OTHER_KEY}\r\n", encoding="utf-8")
    assert OTHER_KEY == target.secret().get_secret_value()


def test_api_key_file_missing_is_a_problem(tmp_path: Path) -> None:
    """A key file that does not exist is reported with the OS reason at the key's line."""
    missing = tmp_path / "no-such-key"
    path = key_target(tmp_path, f"api_key_file: {missing}")
    assert [
        f"{path}:4:19: targets[0].api_key_file: cannot read api_key_file {missing}: "
        "No such file or directory"
    ] == problems(path)


@pytest.mark.parametrize("content", ["", "\n", "  \n\n"])
def test_api_key_file_empty_is_a_problem(tmp_path: Path, content: str) -> None:
    """An empty (or whitespace-only) key file is reported, not sent as an empty key."""
    key_file = tmp_path / "key"
    key_file.write_text(content, encoding="utf-8")
    path = key_target(tmp_path, f"api_key_file: {key_file}")
    assert [f"{path}:4:19: targets[0].api_key_file: api_key_file {key_file} is empty"] == problems(
        path
    )


def test_api_key_inline(tmp_path: Path) -> None:
    """An inline api_key is used as is."""
    target = load_settings(key_target(tmp_path, f'api_key: "{KEY}"')).targets[0]
    assert KEY == target.secret().get_secret_value()


def test_no_key_source_is_a_problem(tmp_path: Path) -> None:
    """A target without any key source is reported at the target."""
    path = key_target(tmp_path, "timeout: 5s")
    assert [
        f"{path}:2:5: targets[0]: set exactly one of api_key_env, api_key_file, api_key "
        "(found: none)"
    ] == problems(path)


def test_two_key_sources_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two key sources are ambiguous; the problem names both and never shows the key."""
    monkeypatch.setenv(KEY_ENV, OTHER_KEY)
    path = write(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: notte
            api_key_env: {KEY_ENV}
            api_key: "{KEY}"
        """,
    )
    found = problems(path)
    assert [
        f"{path}:2:5: targets[0]: set exactly one of api_key_env, api_key_file, api_key "
        "(found: api_key_env, api_key)"
    ] == found
    assert KEY not in "\n".join(found)
    assert OTHER_KEY not in "\n".join(found)


def test_settings_repr_hides_the_key(tmp_path: Path) -> None:
    """repr/str of the settings show the key as a SecretStr mask, never its value."""
    settings = load_settings(key_target(tmp_path, f'api_key: "{KEY}"'))
    assert isinstance(settings.targets[0].api_key, SecretStr)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)
    assert KEY not in repr(settings.targets[0])
    assert KEY not in str(settings.model_dump())


# --- located problems ------------------------------------------------------------------

BROKEN = f"""\
poll_interval: 5x
listen: "nope"
bogus: 1
targets:
  - name: a
    provider: chaser
    api_key: "{KEY}"
    timeout: -1s
    page_size: 0
  - name: a
    provider: notte
    api_key: "{KEY}"
    extra: 1
  - name: no
    provider: chaser
    api_key: "{KEY}"
  - name: c
    provider: brauserbase
    api_key: "{KEY}"
  - name: d
    provider: chaser
  - name: "bad name!"
    provider: notte
    api_key: "{KEY}"
    base_url: ftp://example.com
  - provider: chaser
    api_key: "{KEY}"
  - name: h
    api_key: "{KEY}"
"""


def test_every_problem_is_reported_with_file_line_column_and_path(tmp_path: Path) -> None:
    """A config with many problems yields all of them at once, each precisely located."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    units = "use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s"
    assert [
        f"{path}:1:16: poll_interval: invalid duration '5x': {units}",
        f"{path}:2:9: listen: listen must be HOST:PORT, got 'nope'",
        f"{path}:3:1: bogus: unknown key",
        f"{path}:8:14: targets[0].timeout: invalid duration '-1s': {units}",
        f"{path}:9:16: targets[0].page_size: must be at least 1",
        f"{path}:10:11: targets[1].name: duplicate target name 'a' (first used by targets[0])",
        f"{path}:13:5: targets[1].extra: unknown key",
        f"{path}:14:11: targets[2].name: must be text {BOOLEAN_HINT}",
        f"{path}:18:15: targets[3].provider: unknown provider 'brauserbase': "
        f"did you mean browserbase? use one of {PROVIDERS}, or define it under providers:",
        f"{path}:20:5: targets[4]: set exactly one of api_key_env, api_key_file, api_key "
        "(found: none)",
        f"{path}:22:11: targets[5].name: must start with a letter or digit and hold only "
        "letters, digits and _ . : - (at most 128 characters)",
        f"{path}:25:15: targets[5].base_url: base_url must be an http:// or https:// URL "
        "with a host, got 'ftp://example.com'",
        f"{path}:26:5: targets[6].name: required key is missing",
        f"{path}:28:5: targets[7].provider: required key is missing (one of {PROVIDERS})",
    ] == problems(path)


def test_config_error_message_holds_every_problem_and_no_key(tmp_path: Path) -> None:
    """str(ConfigError) is one line per problem and never contains the key."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert 14 == len(text.splitlines())
    assert [str(p) for p in caught.value.problems] == text.splitlines()
    assert KEY not in text


def test_yaml_boolean_name_is_reported(tmp_path: Path) -> None:
    """`name: no` is YAML's false, not the string "no": it is reported, not coerced."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: no
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    expected = f"{path}:2:11: targets[0].name: must be text {BOOLEAN_HINT}"
    assert [expected] == problems(path)


def test_quoted_yaml_boolean_name_is_fine(tmp_path: Path) -> None:
    """Quoting the name makes it the string "no", which is valid."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: "no"
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    assert ["no"] == [t.name for t in load_settings(path).targets]


def test_duplicate_names_point_at_the_second_use(tmp_path: Path) -> None:
    """Each repeated name is reported at its own line, naming the first user."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: same
            provider: chaser
            api_key: "{KEY}"
          - name: other
            provider: notte
            api_key: "{KEY}"
          - name: same
            provider: notte
            api_key: "{KEY}"
          - name: same
            provider: chaser
            api_key: "{KEY}"
        """,
    )
    assert [
        f"{path}:8:11: targets[2].name: duplicate target name 'same' (first used by targets[0])",
        f"{path}:11:11: targets[3].name: duplicate target name 'same' (first used by targets[0])",
    ] == problems(path)


def test_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    """An unknown provider id is reported at its value, with the ids that exist."""
    path = tmp_path / "p.yaml"
    path.write_text(
        f'targets:\n  - name: t\n    provider: NOTTE\n    api_key: "{KEY}"\n', encoding="utf-8"
    )
    assert [
        f"{path}:3:15: targets[0].provider: unknown provider 'NOTTE': did you mean notte? "
        f"use one of {PROVIDERS}, or define it under providers:"
    ] == problems(path)


def test_unknown_keys_at_every_level(tmp_path: Path) -> None:
    """Misspelled keys are errors at the top level and inside a target."""
    path = write(
        tmp_path,
        f"""
        pol_interval: 10s
        targets:
          - name: t
            provider: chaser
            api_key: "{KEY}"
            timout: 5s
        """,
    )
    assert [
        f"{path}:1:1: pol_interval: unknown key (did you mean poll_interval?)",
        f"{path}:6:5: targets[0].timout: unknown key (did you mean timeout?)",
    ] == problems(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f'targets:\n  - name: c1\n    provider: chaser\n    api_key: "{KEY}\n',
            "{path}:4:14: a quoted value is never closed: add the closing quote on this line",
        ),
        (
            f"targets:\n  - name: c1\n    provider: chaser\n   api_key: {KEY}\n",
            "{path}:4:4: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(this line's indentation does not match the lines above it)",
        ),
        (
            "poll_interval: [1, 2\ntargets: []\n",
            "{path}:2:8: invalid YAML: expected ',' or ']', but got ':'",
        ),
        (
            "\ttargets: 1\n",
            "{path}:1:1: invalid YAML: found character '\\t' that cannot start any token "
            "(indent with spaces: YAML does not allow tabs)",
        ),
    ],
)
def test_yaml_syntax_errors_have_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    """A YAML syntax error is one problem at the parser's line:column, without the key."""
    path = tmp_path / "syntax.yaml"
    path.write_text(text, encoding="utf-8")
    found = problems(path)
    assert [expected.format(path=path)] == found
    assert KEY not in "\n".join(found)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    """A list or scalar document is reported as such, at the file."""
    path = tmp_path / "list.yaml"
    path.write_text(text, encoding="utf-8")
    assert [f"{path}: the config must be a mapping of keys to values"] == problems(path)


def test_empty_file_reports_missing_targets(tmp_path: Path) -> None:
    """An empty file is an empty mapping: the one required key, targets, is missing."""
    path = write(tmp_path, "")
    assert [f"{path}: targets: required key is missing"] == problems(path)


def test_empty_target_list_is_a_problem(tmp_path: Path) -> None:
    """At least one target is required."""
    path = write(tmp_path, "targets: []\n")
    assert [f"{path}:1:10: targets: needs at least 1 entry"] == problems(path)


def test_unreadable_config_file(tmp_path: Path) -> None:
    """A missing config file is one problem naming the file and the OS reason."""
    path = tmp_path / "absent.yaml"
    assert [f"{path}: cannot read: No such file or directory"] == problems(path)


def test_config_path_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--config wins; else SESSION_EXPORTER_CONFIG; else a one-problem ConfigError."""
    monkeypatch.setenv(CONFIG_ENV, "/from/env.yaml")
    assert Path("/cli.yaml") == config_path("/cli.yaml")
    assert Path("/from/env.yaml") == config_path(None)
    monkeypatch.delenv(CONFIG_ENV)
    with pytest.raises(ConfigError) as caught:
        config_path(None)
    assert (
        Problem(
            "config",
            "",
            "no config file given: pass --config FILE or set SESSION_EXPORTER_CONFIG",
        ),
    ) == caught.value.problems


def test_settings_type_is_frozen(tmp_path: Path) -> None:
    """The loaded settings cannot be changed by accident after validation."""
    settings = load_settings(write(tmp_path, ONE_TARGET))
    assert isinstance(settings, Settings)
    with pytest.raises(ValueError, match="frozen"):
        settings.poll_interval = 1.0  # type: ignore[misc]


# --- mistakes YAML or the key sources would otherwise hide --------------------------------


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    """A key given twice in one mapping is a located problem, not a silent overwrite."""
    path = write(
        tmp_path,
        f"""
        poll_interval: 10s
        targets:
          - name: c1
            provider: chaser
            api_key: "{KEY}"
            timeout: 1s
            timeout: 2s
        poll_interval: 20s
        """,
    )

    assert [
        f"{path}:7:5: targets[0].timeout: key given twice (the last one would silently win)",
        f"{path}:8:1: poll_interval: key given twice (the last one would silently win)",
    ] == problems(path)


def test_key_written_into_api_key_env_is_not_echoed(tmp_path: Path) -> None:
    """A key pasted where a variable name belongs is rejected without printing it."""
    secret = "sk-live-4f9a8b7c6d5e"
    path = write(
        tmp_path,
        f"""
        targets:
          - name: c1
            provider: chaser
            api_key_env: {secret}
        """,
    )

    found = problems(path)

    assert [
        f"{path}:4:18: targets[0].api_key_env: api_key_env must be the NAME of an environment "
        "variable (letters, digits, _), not the key; use api_key or api_key_file for the key "
        "itself"
    ] == found
    assert secret not in "\n".join(found)


def test_empty_inline_key_is_a_problem(tmp_path: Path) -> None:
    """`api_key: ""` is refused like an empty variable or file, not sent as `Bearer `."""
    path = write(
        tmp_path,
        """
        targets:
          - name: c1
            provider: chaser
            api_key: "  "
        """,
    )

    assert [f"{path}:4:14: targets[0].api_key: api_key is empty"] == problems(path)


PASTED_TRIGGER_KEY = "tr_prod_AbCd1234EfGh5678IjKl"  # a Trigger.dev key is a valid variable name


def test_trigger_key_pasted_into_api_key_env_is_not_printed(tmp_path: Path) -> None:
    """A key that is also a valid variable name, put into api_key_env, is shown only up to
    where it starts to look like a key, with its length."""
    path = key_target(tmp_path, f"api_key_env: {PASTED_TRIGGER_KEY}")

    found = problems(path)

    assert [
        f"{path}:4:18: targets[0].api_key_env: environment variable tr_prod_… (28 characters, "
        "not shown: it may be a key) named by api_key_env is unset or empty"
    ] == found
    assert "AbCd1234" not in "\n".join(found)


def test_key_pasted_into_api_key_file_is_not_printed(tmp_path: Path) -> None:
    """The same for a key put where the key file's path belongs."""
    path = key_target(tmp_path, f"api_key_file: {PASTED_TRIGGER_KEY}")

    found = problems(path)

    assert [
        f"{path}:4:19: targets[0].api_key_file: cannot read api_key_file tr_prod_… "
        "(28 characters, not shown: it may be a key): No such file or directory"
    ] == found
    assert "AbCd1234" not in "\n".join(found)


@pytest.mark.parametrize(
    "name", ["NOTTE_API_KEY", "TRIGGER_SECRET_KEY", "notte_key", "KEY2", "X_1234_ABCD"]
)
def test_variable_names_are_printed_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Names that look like names still appear as written, so the message stays useful."""
    monkeypatch.delenv(name, raising=False)
    path = key_target(tmp_path, f"api_key_env: {name}")
    assert [
        f"{path}:4:18: targets[0].api_key_env: environment variable {name} "
        "named by api_key_env is unset or empty"
    ] == problems(path)


CONTROL = "contains a control character (CR, LF, NUL, ...): a key is one line of printable text"


@pytest.mark.parametrize("key", ["abc\\r\\ndef-123456", "abc\\0def-123456", "abc\\ndef"])
def test_inline_key_with_cr_lf_or_nul_is_a_problem(tmp_path: Path, key: str) -> None:
    """A key that cannot go into an HTTP header is a config error, not a crash at every poll."""
    path = key_target(tmp_path, f'api_key: "{key}"')
    assert [f"{path}:4:14: targets[0].api_key: api_key {CONTROL}"] == problems(path)


def test_env_key_with_a_line_break_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for a key read from the environment (which cannot hold NUL)."""
    monkeypatch.setenv(KEY_ENV, f"{KEY}\r\nX-Injected: 1")
    path = key_target(tmp_path, f"api_key_env: {KEY_ENV}")
    assert [
        f"{path}:4:18: targets[0].api_key_env: environment variable {KEY_ENV} {CONTROL}"
    ] == problems(path)


def test_key_file_with_a_nul_is_a_problem(tmp_path: Path) -> None:
    """The same for a key file (its surrounding whitespace is still stripped first)."""
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY.encode() + b"\0more\n")
    path = key_target(tmp_path, f"api_key_file: {key_file}")
    assert [f"{path}:4:19: targets[0].api_key_file: api_key_file {key_file} {CONTROL}"] == (
        problems(path)
    )


# --- per-target environment overrides and checks after the merge -------------------------

TWO_TARGETS = f"""
targets:
  - name: notte-prod
    provider: notte
    api_key: "{KEY}"
  - name: browsers
    provider: chaser
    api_key: "{KEY}"
"""


def test_target_override_by_index_and_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SESSION_EXPORTER_TARGETS__<index or name>__<key> overrides one target's key."""
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS__0__TIMEOUT", "7s")
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS__NOTTE_PROD__ONLY_ACTIVE", "false")
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS__browsers__PER_SESSION__ENABLED", "true")

    settings = load_settings(write(tmp_path, TWO_TARGETS))

    notte, chaser = settings.targets
    assert 7.0 == notte.timeout
    assert False is getattr(notte, "only_active")  # noqa: B009 - a provider-specific option
    assert True is chaser.per_session.enabled
    assert 10.0 == chaser.timeout


def test_bad_target_override_is_located_at_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad value, an unknown target and a malformed name are each reported at the variable."""
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS__1__TIMEOUT", "soon")
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS__NOPE__TIMEOUT", "1s")
    monkeypatch.setenv("SESSION_EXPORTER_TARGETS__0", "x")

    assert [
        "environment SESSION_EXPORTER_TARGETS__1__TIMEOUT: targets[1].timeout: invalid duration "
        "'soon': use a number of seconds or units like 500ms, 30s, 5m, 1h, 1d, 1m30s",
        "environment SESSION_EXPORTER_TARGETS__0: expected "
        "SESSION_EXPORTER_TARGETS__<index or name>__<key>",
        "environment SESSION_EXPORTER_TARGETS__NOPE__TIMEOUT: no target 'NOPE' in the file "
        "(give its index or its name)",
    ] == problems(write(tmp_path, TWO_TARGETS))


def test_duplicate_names_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Targets given as JSON are checked for duplicate names too (after the merge)."""
    monkeypatch.setenv(
        "SESSION_EXPORTER_TARGETS",
        json.dumps(
            [
                {"name": "b", "provider": "agi", "api_key": KEY},
                {"name": "b", "provider": "chaser", "api_key": KEY},
            ]
        ),
    )

    assert [
        "environment SESSION_EXPORTER_TARGETS: targets[1].name: duplicate target name 'b' "
        "(first used by targets[0])"
    ] == problems(write(tmp_path, ONE_TARGET))


def test_file_duplicates_ignored_when_the_environment_replaces_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duplicate names in file targets that the environment replaces are not reported."""
    monkeypatch.setenv(
        "SESSION_EXPORTER_TARGETS", json.dumps([{"name": "b", "provider": "agi", "api_key": KEY}])
    )
    path = write(tmp_path, ONE_TARGET + ONE_TARGET.split("targets:\n")[1])

    assert ["b"] == [t.name for t in load_settings(path).targets]


def test_stale_after_must_exceed_the_interval(tmp_path: Path) -> None:
    """A stale_after not longer than the poll interval is a located problem."""
    path = write(
        tmp_path,
        f"""
        poll_interval: 1m
        stale_after: 30s
        targets:
          - name: c1
            provider: chaser
            api_key: "{KEY}"
            stale_after: 2m
          - name: c2
            provider: chaser
            api_key: "{KEY}"
        """,
    )

    assert [
        f"{path}:2:14: stale_after: must be longer than the poll interval (1m), or the "
        "target's session series would vanish between polls"
    ] == problems(path)


def test_numeric_key_gets_a_quoting_hint(tmp_path: Path) -> None:
    """An unquoted numeric api_key is reported with a hint to quote it."""
    path = write(
        tmp_path,
        """
        targets:
          - name: c1
            provider: chaser
            api_key: 12345678
        """,
    )

    assert [
        f"{path}:4:14: targets[0].api_key: must be text (YAML read a number here: quote the value)"
    ] == problems(path)


def test_durations_are_bounded(tmp_path: Path) -> None:
    """A duration over a year is refused instead of printed as a 300-digit number of days."""
    path = write(tmp_path, "poll_interval: 1.0e+300\n" + ONE_TARGET)

    assert [f"{path}:1:16: poll_interval: must be at most 366d"] == problems(path)


@pytest.mark.parametrize("url", ["http:///sessions", "ftp://example.com", "https://"])
def test_base_url_needs_http_and_a_host(tmp_path: Path, url: str) -> None:
    """A base_url that is not http(s) with a host is refused at its location."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: c1
            provider: chaser
            api_key: "{KEY}"
            base_url: "{url}"
        """,
    )

    assert [
        f"{path}:5:15: targets[0].base_url: base_url must be an http:// or https:// URL with a "
        f"host, got {url!r}"
    ] == problems(path)


def test_base_url_with_credentials_is_refused_without_echoing_them(tmp_path: Path) -> None:
    """Credentials in base_url (user:password@) are refused, and never shown: they may be a
    key, and aiohttp would refuse them next to the Authorization header on every poll."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: c1
            provider: chaser
            api_key: "{KEY}"
            base_url: "https://me:s3cr3t-key@api.chaser.sh"
        """,
    )

    found = problems(path)
    assert [
        f"{path}:5:15: targets[0].base_url: base_url must not hold credentials "
        "(user:password@); the key goes in api_key, api_key_env or api_key_file"
    ] == found
    assert not any("s3cr3t" in problem for problem in found)


# --- problems in plain words ------------------------------------------------------------

PYDANTIC_PHRASES = (
    "Input should",
    "should have",
    "should match",
    "after validation",
    "Value error",
)


def test_an_option_of_another_provider_names_its_provider(tmp_path: Path) -> None:
    """ended_window on a Notte target belongs to trigger; page_concurrency to chaser or notte."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: n
            provider: notte
            api_key: "{KEY}"
            ended_window: 1h
          - name: t
            provider: trigger
            api_key: "{KEY}"
            page_concurrency: 2
        """,
    )
    assert [
        f"{path}:5:5: targets[0].ended_window: not an option of notte targets: "
        "ended_window belongs to trigger",
        f"{path}:9:5: targets[1].page_concurrency: not an option of trigger targets: "
        "page_concurrency belongs to chaser or notte",
    ] == problems(path)


def test_unknown_nested_key_suggests_the_nearest_and_far_ones_get_none(tmp_path: Path) -> None:
    """A typo inside per_session gets its nearest key; a word like no key gets no guess."""
    path = write(
        tmp_path,
        f"""
        targets:
          - name: t
            provider: chaser
            api_key: "{KEY}"
            per_session:
              max_serie: 5
            colour: blue
        """,
    )
    assert [
        f"{path}:6:7: targets[0].per_session.max_serie: unknown key (did you mean max_series?)",
        f"{path}:7:5: targets[0].colour: unknown key",
    ] == problems(path)


def test_every_error_type_reads_in_plain_words(tmp_path: Path) -> None:
    """Each kind of wrong value gets a sentence of what is allowed; no pydantic phrase remains."""
    path = write(
        tmp_path,
        f"""
        log_level: loud
        total_shards: many
        targets:
          - name: "-leading-dash"
            provider: chaser
            api_key: "{KEY}"
            max_pages: 0
            retries: 11
            rate_limit: fast
            timeout: 0
            page_size: 2.5
            per_session:
              enabled: sometimes
              phases: []
          - name: t
            provider: trigger
            api_key: "{KEY}"
            tags: "one"
            type: ["a,b"]
            per_session:
              phases: [live, sleeping]
          - 7
        """,
    )
    found = problems(path)

    assert [
        f"{path}:1:12: log_level: must be one of debug, info, warning, error, not 'loud'",
        f"{path}:2:15: total_shards: must be a whole number, not 'many'",
        f"{path}:4:11: targets[0].name: must start with a letter or digit and hold only "
        "letters, digits and _ . : - (at most 128 characters)",
        f"{path}:7:16: targets[0].max_pages: must be at least 1",
        f"{path}:8:14: targets[0].retries: must be at most 10",
        f"{path}:9:17: targets[0].rate_limit: must be a number, not 'fast'",
        f"{path}:10:14: targets[0].timeout: must be longer than 0s",
        f"{path}:11:16: targets[0].page_size: must be a whole number, not 2.5",
        f"{path}:13:16: targets[0].per_session.enabled: must be true or false, not 'sometimes'",
        f"{path}:14:15: targets[0].per_session.phases: needs at least 1 entry",
        f"{path}:18:11: targets[1].tags: must be a list (one `- item` per line, or [a, b])",
        f"{path}:19:12: targets[1].type[0]: must not contain a comma "
        "(give several values as a list instead)",
        f"{path}:21:22: targets[1].per_session.phases[1]: must be one of pending, live, "
        "paused, ended, failed, unknown, not 'sleeping'",
        f"{path}:22:5: targets[2]: must be a mapping of keys to values",
    ] == found
    for problem in found:
        assert not any(phrase in problem for phrase in PYDANTIC_PHRASES), problem


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"type": "greater_than", "loc": ("shard",), "msg": "", "ctx": {"gt": 2}},
            "must be more than 2",
        ),
        (
            {"type": "less_than", "loc": ("shard",), "msg": "", "ctx": {"lt": 5}},
            "must be less than 5",
        ),
        (
            {"type": "too_long", "loc": ("targets",), "msg": "", "ctx": {"max_length": 3}},
            "may hold at most 3 entries",
        ),
        (
            {"type": "string_too_short", "loc": ("listen",), "msg": "", "ctx": {"min_length": 1}},
            "must not be empty",
        ),
        (
            {"type": "string_too_long", "loc": ("listen",), "msg": "", "ctx": {"max_length": 9}},
            "must be at most 9 characters long",
        ),
        (
            {"type": "finite_number", "loc": ("shard",), "msg": ""},
            "must be a finite number (not inf or nan)",
        ),
        (
            {"type": "date_type", "loc": ("x",), "msg": "Input should be a valid date"},
            "must be a valid date",
        ),
        (
            {"type": "set_type", "loc": ("x",), "msg": "Input should be a valid set", "input": 3},
            "must be a list (one `- item` per line, or [a, b]), not a number",
        ),
    ],
)
def test_error_types_no_config_triggers_today_still_read_well(
    error: dict[str, object], expected: str
) -> None:
    """Bounds, lengths and unforeseen types (a field added later) are sentences too."""
    assert expected == describe(error, Settings)


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ('targets:\n  - name: "abc\n    provider: chaser\n', "2:11"),
        ("targets:\n  - name: a\n    provider: 'chaser\n  - name: b\n", "3:15"),
        ('poll_interval: "30s\n', "1:16"),
    ],
)
def test_an_unclosed_quote_points_at_its_line(tmp_path: Path, text: str, at: str) -> None:
    """A quote left open is reported where it opens, not at the end of the file."""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert [
        f"{path}:{at}: a quoted value is never closed: add the closing quote on this line"
    ] == problems(path)


def test_misspelt_variables_are_found_with_a_suggestion(tmp_path: Path) -> None:
    """A variable that looks like a setting is reported; keys named by api_key_env are not."""
    environ = {
        "SESSION_EXPORTER_POLL_INTERVALL": "10s",
        "SESSION_EXPORTER_LOGLEVEL": "debug",
        "SESSION_EXPORTER_CONFIG_FILE": "x.yaml",
        "SESSION_EXPORTER_LISTEN": ":9000",
        "SESSION_EXPORTER_TARGETS__0__TIMEOUT": "5s",
        "SESSION_EXPORTER_SHARDS": "the key of a target",
        "SESSION_EXPORTER_NOTTE_KEY": "unrelated and far from every setting",
        "PATH": "/bin",
    }
    settings = Settings(targets=[{"name": "a", "provider": "chaser", "api_key_env": "PATH"}])
    named = settings.model_copy(
        update={
            "targets": [
                settings.targets[0].model_copy(update={"api_key_env": "SESSION_EXPORTER_SHARDS"})
            ]
        }
    )

    assert [
        "environment SESSION_EXPORTER_CONFIG_FILE: not a setting, so it is ignored "
        "(did you mean SESSION_EXPORTER_CONFIG?)",
        "environment SESSION_EXPORTER_LOGLEVEL: not a setting, so it is ignored "
        "(did you mean SESSION_EXPORTER_LOG_LEVEL?)",
        "environment SESSION_EXPORTER_POLL_INTERVALL: not a setting, so it is ignored "
        "(did you mean SESSION_EXPORTER_POLL_INTERVAL?)",
    ] == [str(p) for p in misspelt_variables(environ, named)]
    shards = "environment SESSION_EXPORTER_SHARDS: not a setting, so it is ignored"
    assert any(str(p).startswith(shards) for p in misspelt_variables(environ, settings))


# --- aliases ----------------------------------------------------------------------------

BOMB = (
    "too many YAML nodes: this expands to more than 100,000 with its aliases (an alias "
    "bomb?); write the values out or use fewer aliases"
)


def test_alias_bomb_is_refused_at_once_and_located(tmp_path: Path) -> None:
    """A 510-byte file whose aliases expand to 387 million nodes is one located problem: at
    the first list that is too big by itself (9**6 nodes; 9**5 would fit), and no walk of
    the expanded document (the duplicate-key check used to follow every alias)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(ONE_TARGET + alias_bomb(), encoding="utf-8")

    assert [f"{path}:12:7: {BOMB}"] == problems(path)


def test_alias_cycle_is_refused(tmp_path: Path) -> None:
    """An alias inside its own anchor (a cycle PyYAML composes) is refused, not walked."""
    path = tmp_path / "cycle.yaml"
    path.write_text(ONE_TARGET + "loop: &loop [1, *loop]\n", encoding="utf-8")

    assert [f"{path}:6:7: an alias refers to its own anchor (a cycle)"] == problems(path)


def test_ordinary_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    """Sharing one target's settings with the next through an anchor and a merge key works."""
    path = write(
        tmp_path,
        f"""
        targets:
          - &first {{name: a, provider: chaser, api_key: "{KEY}", timeout: 5s}}
          - {{<<: *first, name: b}}
        """,
    )

    settings = load_settings(path)

    assert [("a", 5.0), ("b", 5.0)] == [(t.name, t.timeout) for t in settings.targets]


# --- hostile files -----------------------------------------------------------------------


def test_a_long_flat_list_is_refused_while_it_is_composed(tmp_path: Path) -> None:
    """A 1 MB flat YAML list (250,000 items, no alias) is refused at the list, as soon as it
    passes the node budget, with a message that says no alias is involved: the budget used to
    be checked after the whole tree was built (+355 MiB, 11-13 s)."""
    path = tmp_path / "flat.yaml"
    path.write_text(ONE_TARGET + "junk:\n" + "- a\n" * 250_000, encoding="utf-8")

    assert [
        f"{path}:7:1: too many YAML nodes: more than 100,000 (about 7,000 targets); "
        "split the targets over several exporters"
    ] == problems(path)


def test_deep_nesting_is_a_located_problem(tmp_path: Path) -> None:
    """A list nested 5,000 deep is one located problem at the level past the limit, not a
    RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text(ONE_TARGET + "deep: " + "[" * 5_000 + "]" * 5_000 + "\n", encoding="utf-8")

    assert [f"{path}:6:70: nested more than 64 levels deep: a config needs 5"] == problems(path)


def test_a_config_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    """A config over 4 MiB is refused before it is parsed."""
    path = tmp_path / "big.yaml"
    path.write_text(ONE_TARGET + "# " + "x" * (4 * 1024 * 1024) + "\n", encoding="utf-8")

    assert [f"{path}: larger than 4 MiB: not a config file"] == problems(path)
