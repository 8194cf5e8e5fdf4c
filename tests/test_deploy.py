"""The shipped deployment files agree with the shipped config (no Docker daemon is needed to check)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

from bridge.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    pairs: dict[str, str] = {}
    for line in re.findall(r"^ENV (.+)$", text, re.MULTILINE):
        pairs.update(dict(p.split("=", 1) for p in line.split()))
    return pairs


def test_the_container_listens_everywhere_and_keeps_its_database_on_the_volume() -> None:
    env = dockerfile_env()
    assert env["BRIDGE_CONFIG"] == "/app/bridge.yaml"
    config = load_config(ROOT / "bridge.yaml", env=env)
    assert config.server.host == "0.0.0.0"
    assert config.db_path == "/data/bridge.db"
    assert 'VOLUME ["/data"]' in (ROOT / "Dockerfile").read_text()


def test_compose_builds_the_image_with_a_volume_and_a_private_port() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["bridge"]
    assert service["build"] == "."
    assert service["environment"]["BRIDGE_DB"] == "/data/bridge.db"
    assert "bridge-data:/data" in service["volumes"]
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])  # TLS comes from the reverse proxy


def test_systemd_unit_runs_bridge_with_its_state_directory() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "bridge.service")
    service = unit["Service"]
    assert service["ExecStart"].endswith("bridge run")
    assert service["StateDirectory"] == "bridge"
    assert "BRIDGE_DB=/var/lib/bridge/bridge.db" in service["Environment"]
    config = load_config(ROOT / "bridge.yaml", env={"BRIDGE_DB": "/var/lib/bridge/bridge.db"})
    assert config.db_path == "/var/lib/bridge/bridge.db"
    assert int(service["TimeoutStopSec"]) > 20  # longer than the bridge's 20 s shutdown grace


def test_systemd_unit_keeps_the_history_private() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "bridge.service")
    assert unit["Service"]["UMask"] == "0077"
    assert unit["Service"]["StateDirectoryMode"] == "0700"


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    first_code = next(i for i, line in enumerate(lines) if line.startswith(("COPY bridge", "COPY platforms")))
    dependencies = next(i for i, line in enumerate(lines) if "pip install -r" in line)
    assert dependencies < first_code
    copied_before = [line for line in lines[:dependencies] if line.startswith("COPY")]
    assert copied_before == ["COPY pyproject.toml ./"]  # a code change cannot invalidate the dependencies layer
    assert any(line.startswith("RUN pip install --no-deps .") for line in lines[first_code:])


def test_dockerignore_keeps_secrets_databases_and_history_out_of_the_image() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", "*.db", "*.db-wal", ".env", "*.pem", ".venv", "tests/"} <= ignored
    assert not ignored & {"bridge/", "platforms/", "prompts/", "bridge.yaml", "pyproject.toml", "README.md"}


def test_the_dockerfile_reads_the_same_dependencies_as_pip(tmp_path: Path) -> None:
    import subprocess
    import sys
    import tomllib

    text = (ROOT / "Dockerfile").read_text()
    [script] = re.findall(r'RUN python -c "(.+?)"', text)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    with (ROOT / "pyproject.toml").open("rb") as f:
        assert out.split("\n")[:-1] == tomllib.load(f)["project"]["dependencies"]
