"""A small MCP server that searches the Markdown files of one folder: no network, no index.

Run by the bridge over stdio (``command: ["python3", "bridge/tools/examples/docs_search.py", "docs"]``).
It imports nothing from the bridge, so it can be copied anywhere the ``mcp`` SDK is installed.

Tools: ``search_docs`` (files and lines matching the words of a query, best first), ``read_doc``
(a range of lines of one file) and ``list_docs``. Every path stays inside the folder, and every
answer is bounded (:data:`MAX_RESULTS`, :data:`MAX_LINES`, :data:`MAX_FILE_BYTES`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

MAX_RESULTS = 10           # files per search
MATCHES_PER_FILE = 3       # lines shown per file found
MAX_LINES = 200            # lines per read_doc
MAX_FILE_BYTES = 2_000_000  # larger files are skipped: documentation, not data dumps
_WORD = re.compile(r"\w{2,}")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.md") if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES)


def _inside(root: Path, name: str) -> Path | None:
    path = (root / name).resolve()
    return path if path.is_file() and path.is_relative_to(root) and path.suffix == ".md" else None


def build(root: Path) -> MCPServer:
    root = root.resolve()
    server = MCPServer("docs-search", instructions=f"Search and read the Markdown documentation in {root.name}/.",
                       log_level="WARNING")  # its stderr is the bridge's: no line per request

    @server.tool()
    def search_docs(query: str, max_results: int = 5) -> str:
        """Find the Markdown files whose text matches the words of ``query`` (case-insensitive), best
        first, with the matching lines and their numbers. Then use read_doc to read around a line."""
        words = {w.lower() for w in _WORD.findall(query)}
        if not words:
            return "Give a query with at least one word."
        found: list[tuple[int, str, list[str]]] = []
        for path in _files(root):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            hits = [(i, line) for i, line in enumerate(lines, 1) if words & {w.lower() for w in _WORD.findall(line)}]
            if hits:
                score = sum(len(words & {w.lower() for w in _WORD.findall(line)}) for _, line in hits)
                shown = [f"  {i}: {line.strip()[:200]}" for i, line in hits[:MATCHES_PER_FILE]]
                found.append((score, str(path.relative_to(root)), shown))
        if not found:
            return f"Nothing in {root.name}/ matches {query!r}."
        found.sort(key=lambda f: (-f[0], f[1]))
        return "\n".join(f"{name} (score {score})\n" + "\n".join(shown)
                         for score, name, shown in found[:max(1, min(max_results, MAX_RESULTS))])

    @server.tool()
    def read_doc(path: str, start_line: int = 1, max_lines: int = 80) -> str:
        """Lines of one Markdown file (a path as search_docs or list_docs shows it), from ``start_line``."""
        found = _inside(root, path)
        if found is None:
            return f"No Markdown file {path!r} in {root.name}/ (list_docs shows them)."
        lines = found.read_text(encoding="utf-8", errors="replace").splitlines()
        start = max(1, start_line)
        count = max(1, min(max_lines, MAX_LINES))
        part = lines[start - 1:start - 1 + count]
        more = f"\n(lines {start}-{start + len(part) - 1} of {len(lines)})"
        return "\n".join(f"{n}: {line}" for n, line in enumerate(part, start)) + more

    @server.tool()
    def list_docs() -> str:
        """Every Markdown file in the folder, with its first heading."""
        out = []
        for path in _files(root):
            head = next((line.lstrip("# ").strip() for line in path.read_text(encoding="utf-8", errors="replace")
                         .splitlines() if line.startswith("#")), "")
            out.append(f"{path.relative_to(root)}: {head}" if head else str(path.relative_to(root)))
        return "\n".join(out) or f"No Markdown files in {root.name}/."

    return server


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "docs")).run()
