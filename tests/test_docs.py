"""The README and docs/ as a newcomer reads them: a short front door, pages that say what they are
for, links that lead somewhere, every config key documented, no words about how the project was
made, and an install that gives the bot without the test tools."""

from __future__ import annotations

import re
import tomllib

from pydantic import BaseModel

from bridge.config import Config
from tests.test_cli import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
README = (ROOT / "README.md").read_text()
# Pages other parts of the project add; the README lists them already.
COMING = {"slack-ai.md", "discord-commands.md", "tools.md",
          "github.md", "benchmarks-store.md", "relay.md"}


def test_the_readme_is_a_front_door() -> None:
    assert 100 < len(README.splitlines()) < 500
    headings = [line for line in README.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## How a message flows", "## Quick start"]
    assert "## More" in headings


def test_quick_start_makes_a_venv_then_installs_the_bot_alone() -> None:
    start = README.index("## Quick start")
    venv, install = README.index("python3 -m venv .venv", start), README.index("pip install -e .\n", start)
    assert venv < install
    assert ".[test]" not in README
    assert "bash .ci/test" in README
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    bot = " ".join(project["dependencies"]).lower()
    for tool in ("pytest", "mypy", "ruff", "hypothesis", "xllamacpp"):
        assert tool not in bot, f"{tool} would be installed with the bot"
        assert any(d.lower().startswith(tool) for d in project["optional-dependencies"]["test"])
    assert '-e ".[test]"' in (ROOT / ".ci" / "test").read_text()  # the test command installs them itself


def test_every_page_starts_by_saying_what_it_is_for() -> None:
    assert len(DOCS) >= 10
    for page in DOCS:
        paragraphs = [p for p in page.read_text().split("\n\n") if p.strip()]
        assert paragraphs[0].startswith("# "), page.name
        assert paragraphs[1].startswith("This page"), page.name


def test_no_words_about_how_the_project_was_made() -> None:
    texts = {"README.md": README} | {f"docs/{p.name}": p.read_text() for p in DOCS}
    for path in [*ROOT.glob("bridge/**/*.py"), *ROOT.glob("platforms/**/*.py"), ROOT / "Dockerfile",
                 ROOT / "deploy" / "bridge.service", ROOT / "bridge.yaml", ROOT / "compose.yaml"]:
        texts[str(path.relative_to(ROOT))] = path.read_text()
    for name, text in texts.items():
        # Files that never shipped with the project (spelled in two parts so that this test names none).
        for phrase in ("CONTRACT" ".md", "STYLE" ".md", "*Extension.*", "*extension*", "the issue:", "project's rules"):
            assert phrase not in text, f"{name}: {phrase!r}"


def test_links_lead_somewhere() -> None:
    for page, text in [(ROOT / "README.md", README), *((p, p.read_text()) for p in DOCS)]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path = (page.parent / target).resolve()
            assert path.exists() or path.name in COMING, f"{page.name}: {target}"


def keys(model: type[BaseModel]) -> set[str]:
    found: set[str] = set()
    for name, field in model.model_fields.items():
        if name in ("base_dir", "source"):
            continue
        found.add(name)
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (arg, *getattr(arg, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    found |= keys(inner)
    return found


def test_every_config_key_is_documented() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(k for k in keys(Config) if not re.search(rf"\b{re.escape(k)}\b", reference))
    assert not missing, missing


def test_the_places_the_docs_warn_about_are_the_ones_check_refuses() -> None:
    from bridge.places import place_problem

    reference = (ROOT / "docs" / "configuration.md").read_text()
    for platform, where in (("slack", "#general"), ("slack", "general"), ("discord", "12345"),
                            ("github", "octo-org")):
        assert place_problem(platform, where) is not None
    assert "owner/repo#123" in reference
    assert "never a `#name` or a bare name" in reference


def shell_blocks(text: str) -> list[str]:
    """The contents of the ```sh fences."""
    blocks: list[str] = []
    current: list[str] | None = None
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            if inside:
                if current is not None:
                    blocks.append("\n".join(current))
                inside, current = False, None
            else:
                inside, current = True, [] if line.strip() == "```sh" else None
        elif current is not None:
            current.append(line)
    return blocks


def test_every_bridge_command_in_the_docs_parses() -> None:
    import shlex

    import pytest

    from bridge.cli import build_parser

    command = re.compile(r"(?:^|[\s/`])bridge ((?:run|check|chat|sessions|usage|backup|migrate)\b[^\n#&|;`]*)")
    seen = 0
    for page in [ROOT / "README.md", *DOCS]:
        for fence in shell_blocks(page.read_text()):
            for args in command.findall(fence):
                if "$(" in args:
                    continue
                try:
                    build_parser().parse_args(shlex.split(args))
                except SystemExit:
                    pytest.fail(f"{page.name}: `bridge {args.strip()}` is not a valid command")
                seen += 1
    assert seen >= 8
