"""`asnmon run` options for the stall alarm and the heartbeat: taught by --help, checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from asnmon.cli import build_parser, main
from asnmon.cli.monitor import run_settings


@pytest.mark.parametrize("option", ["--stall-factor", "--heartbeat-every"])
@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf"])
def test_a_value_that_cannot_work_is_refused_naming_the_option(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", option, value, "--no-dashboard"]) == 1
    err = capsys.readouterr().err
    assert f"command line {option}: must be between" in err
    assert f"got {float(value)}" in err  # the value the lab typed, not a default


def test_the_options_reach_the_settings_and_the_file_is_overridden(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("[run]\nstall_factor = 4\nheartbeat_every = 20\n", "utf-8")
    parser = build_parser()
    plain = run_settings(parser.parse_args(["run", "--settings", str(toml)]))
    assert (plain.stall_factor, plain.heartbeat_every) == (4.0, 20.0)
    args = parser.parse_args(
        ["run", "--settings", str(toml), "--stall-factor", "6", "--heartbeat-every", "2.5"]
    )
    settings = run_settings(args)
    assert (settings.stall_factor, settings.heartbeat_every) == (6.0, 2.5)


def test_help_says_what_each_does_its_default_and_when_to_change_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "INSTRUMENT STALLED when no new file has come for K x the run's median" in text
    assert "default 3 ([run] stall_factor)" in text and "Raise it (e.g. 5)" in text
    assert "'monitor not running'" in text and "Default 10 ([run] heartbeat_every)" in text
