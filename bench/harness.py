"""What every load benchmark shares: fakes on loopback, `bridge run` as a subprocess, its CPU time.

The bridge runs as users run it (``python -m bridge run --config FILE``); the fakes run in the
benchmark's own process, so the bridge's CPU time (``/proc/PID/stat``) is the bridge's alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.procs import ROOT, BridgeProcess, free_port
from tests.test_github import sign


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def spread(runs: list[float]) -> str:
    """``median (min–max)`` of several runs."""
    return f"{statistics.median(runs):.1f} ({min(runs):.1f}–{max(runs):.1f})"


@dataclass
class Running:
    bridge: BridgeProcess
    dir: Path

    @property
    def pid(self) -> int:
        assert self.bridge.proc is not None
        return self.bridge.proc.pid


@asynccontextmanager
async def bridge_run(config: str, env: dict[str, str], *, profile: str | None = None) -> AsyncIterator[Running]:
    """Start ``bridge run`` on ``config`` (YAML text, ``${PORT}`` filled in); stop it with SIGTERM after."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prompts").symlink_to(ROOT / "prompts")
        path = Path(tmp) / "bridge.yaml"
        path.write_text(config)
        port = free_port()
        bridge = BridgeProcess(path, {**env, "PORT": str(port)}, port)
        if profile:
            bridge.argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "bridge"]
        await bridge.start()
        try:
            yield Running(bridge, Path(tmp))
        finally:
            await bridge.stop()


async def post_webhook(session: aiohttp.ClientSession, url: str, payload: dict[str, object]) -> int:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": "issue_comment", "X-Hub-Signature-256": sign(body),
               "Content-Type": "application/json"}
    async with session.post(f"{url}/github/webhook", data=body, headers=headers) as r:
        await r.read()
        return r.status


@asynccontextmanager
async def llm_process(text: str, *, chunk: int, delay: float, latency: float = 0.0) -> AsyncIterator[str]:
    """A fake LLM streaming ``text`` in its own process (bench/llm_process.py); yields its base URL."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.llm_process", text, str(chunk),
                                                str(delay), str(latency), stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    assert proc.stdin is not None
    url = (await proc.stdout.readline()).decode().strip()
    try:
        yield url
    finally:
        proc.stdin.close()
        await proc.wait()
