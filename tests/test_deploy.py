"""The deploy files: every ``asnmon ...`` command in them is one the CLI accepts.

Commands are parsed with ``build_parser().parse_args`` (nothing runs). Those
the CLI does not have yet are strict xfails: the day one is wired, its case
XPASSes and fails, telling whoever wired it to drop it from ``NOT_WIRED``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from asnmon.cli import build_parser
from asnmon.settings import parse_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NOT_WIRED: set[str] = set()  # every command the deploy files use is wired

# an executable that is asnmon: a path or variable ending in asnmon / asnmon.exe
_EXE = re.compile(
    r"""^["']?(?:\$\{?\w*asnmon(?:exe)?\}?|(?:.*[/\\])?asnmon(?:\.exe)?)["']?$""", re.I
)
_STOP = {"|", "||", "&&", ";", ">", ">>", "2>&1", "*>", "*>>", "`", "}", ")"}
_VAR = re.compile(r"\$\{?[\w:]+\}?|%\w")  # shell/PowerShell variables, systemd specifiers


_LAUNCH = {"&", "exec", "--", "sudo", "then", "do", "!"}  # what may precede a bare `asnmon`


def _is_exe(tokens: list[str], i: int) -> bool:
    tok = tokens[i]
    if not _EXE.match(tok):
        return False
    bare = not any(c in tok for c in "$/\\")
    return not bare or i == 0 or tokens[i - 1] in _LAUNCH


def _argv_after_exe(tokens: list[str]) -> list[str] | None:
    for i in range(len(tokens) - 1):
        if _is_exe(tokens, i) and re.fullmatch(r"[a-z][a-z-]*", tokens[i + 1]):
            argv = []
            for t in tokens[i + 1 :]:
                if t in _STOP or t.startswith(("*>", ">", "2>")):
                    break
                end = t.endswith(";")
                argv.append(_VAR.sub("X", t.rstrip(";").strip("\"'")))
                if end:
                    break
            return argv
    return None


def _split(line: str) -> list[str]:
    line = line.split(" #", 1)[0]
    try:
        return shlex.split(line, posix=True)
    except ValueError:
        return line.split()


def extract_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for every asnmon command line in deploy/."""
    found: list[tuple[str, list[str]]] = []
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file() or path.suffix == ".md":  # prose, not executed
            continue
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text("utf-8")
        if path.name == "Dockerfile":
            entry = re.search(r"^ENTRYPOINT\s+(\[.*\])", text, re.M)
            cmd = re.search(r"^CMD\s+(\[.*\])", text, re.M)
            assert entry and cmd, f"{rel}: exec-form ENTRYPOINT and CMD expected"
            exe = json.loads(entry.group(1))
            assert _EXE.match(exe[-1]), f"{rel}: ENTRYPOINT is not asnmon"
            found.append((f"{rel} CMD", [*exe[1:], *json.loads(cmd.group(1))]))
            continue
        if path.suffix in (".yaml", ".yml"):
            for n, m in enumerate(re.finditer(r"^\s*command:\s*(\[.*\])\s*$", text, re.M)):
                found.append((f"{rel} command #{n + 1}", json.loads(m.group(1))))
            continue
        if path.suffix == ".ps1":  # help blocks <# ... #> are prose, keep line numbers
            text = re.sub(r"<#.*?#>", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        for n, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("#") or "asnmon" not in stripped.lower():
                continue
            if path.suffix == ".service":
                if not stripped.startswith("ExecStart"):
                    continue
                stripped = stripped.split("=", 1)[1]
            argv = _argv_after_exe(_split(stripped))
            if argv is not None:
                found.append((f"{rel}:{n}", argv))
    return found


COMMANDS = extract_commands()


def test_every_deploy_file_with_a_command_was_found() -> None:
    where = {w.split(":")[0].split(" ")[0] for w, _ in COMMANDS}
    assert where >= {
        "deploy/linux/asnmon@.service",
        "deploy/linux/install.sh",
        "deploy/windows/install.ps1",
        "deploy/windows/run-asnmon.ps1",
        "deploy/docker/Dockerfile",
        "deploy/docker/compose.yaml",
    }
    subcommands = {argv[0] for _, argv in COMMANDS}
    assert {"run", "init", "check"} <= subcommands


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(
            argv,
            id=f"{where} {' '.join(argv[:1])}",
            marks=[pytest.mark.xfail(strict=True, reason="command not wired yet")]
            if argv[0] in NOT_WIRED
            else [],
        )
        for where, argv in COMMANDS
    ],
)
def test_command_is_accepted_by_the_cli(argv: list[str]) -> None:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"asnmon {' '.join(argv)}: rejected by the argument parser ({exc})")
    assert args.command == argv[0]


@pytest.mark.parametrize("script", sorted(p.name for p in (DEPLOY / "linux").glob("*.sh")))
def test_shell_scripts_parse(script: str) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed")
    result = subprocess.run(
        [bash, "-n", str(DEPLOY / "linux" / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` works offline; only the not-yet-installed venv may be missing."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / "asnmon@qqq1.service"
    unit.write_text((DEPLOY / "linux" / "asnmon@.service").read_text())
    result = subprocess.run(
        [tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/asnmon/venv/bin/asnmon is not executable" not in line
    ]
    assert not problems, "\n".join(problems)
    text = unit.read_text()
    for directive in ("User=asnmon", "Restart=on-failure", "LogsDirectory=asnmon"):
        assert directive in text


def test_compose_file_parses_when_yaml_is_installed() -> None:
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())
    service = data["services"]["asnmon-qqq1"]
    assert "--poll" in service["command"], "a share needs polling"
    assert service["restart"] == "unless-stopped"
    assert any(v.endswith(":/instrument:ro") for v in service["volumes"])


def test_container_settings_parse_and_poll() -> None:
    settings = parse_settings(tomllib.loads((DEPLOY / "docker" / "settings.toml").read_text()))
    assert settings.poll > 0
    assert settings.folder == "/instrument"
    assert settings.host == "0.0.0.0"


def test_no_secrets_or_machine_paths_committed() -> None:
    for path in DEPLOY.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text("utf-8")
        assert not re.search(r"(?i)password\s*=\s*(?!CHANGE_ME|\.\.\.|\$)\S", text), path
        assert not re.search(r"/(home|root|work|Users)/\w", text), path


# ---------------------------------------------------------------- memory limits

# RSS of a monitor after 10,000 injections (README "Benchmarks", benchmarks/latency.py
# --soak): the limits must leave it room for peaks (a big re-quantification, the
# dashboard's clients) and still stop a runaway long before the host runs out.
SOAK_RSS_MIB = 304
_UNIT = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def _bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kmgt]?)b?", value.strip().lower())
    assert m, f"not a byte size: {value!r}"
    return int(m.group(1)) * _UNIT[m.group(2)]


def _unit_values(key: str) -> list[str]:
    text = (DEPLOY / "linux" / "asnmon@.service").read_text()
    service = text.split("[Service]", 1)[1].split("\n[", 1)[0]
    return re.findall(rf"^{key}=(\S+)$", service, re.M)


def test_systemd_unit_limits_memory_sanely() -> None:
    (high,), (cap,) = _unit_values("MemoryHigh"), _unit_values("MemoryMax")
    assert _bytes(high) < _bytes(cap), "MemoryHigh must throttle before MemoryMax kills"
    assert _bytes(high) >= 2 * SOAK_RSS_MIB * 2**20, "no headroom over the measured RSS"
    assert _bytes(cap) <= 4 * 2**30, "a monitor has no use for more; the PC has other work"
    assert _unit_values("MemorySwapMax") == ["0"]  # at the limit: restart, not swap for hours
    assert _unit_values("Restart") == ["on-failure"]  # an OOM kill comes back by itself


def test_compose_limits_memory_like_the_unit() -> None:
    yaml = pytest.importorskip("yaml")
    service = yaml.safe_load((DEPLOY / "docker" / "compose.yaml").read_text())["services"][
        "asnmon-qqq1"
    ]
    (cap,), (high,) = _unit_values("MemoryMax"), _unit_values("MemoryHigh")
    assert _bytes(str(service["mem_limit"])) == _bytes(cap)
    assert _bytes(str(service["mem_reservation"])) == _bytes(high)
    assert _bytes(str(service["memswap_limit"])) == _bytes(str(service["mem_limit"]))


def test_deploy_readme_explains_the_memory_limits() -> None:
    text = (DEPLOY / "README.md").read_text("utf-8")
    section = text.split("## Memory", 1)[1].split("\n## ", 1)[0]
    for needed in ("MemoryMax", "MemoryHigh", "mem_limit", f"{SOAK_RSS_MIB} MiB", "--soak"):
        assert needed in section, needed
