"""`bridge run` as users run it — a subprocess with a config file — for tests that kill it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BridgeProcess:
    """One ``python -m bridge run`` on a config file; ``start`` waits until ``/healthz`` answers."""

    def __init__(self, config: Path, env: dict[str, str], port: int) -> None:
        self.config, self.env, self.port = config, env, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.log = config.parent / "bridge.log"

    async def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bridge", "run", "--config", str(self.config),
                env={**os.environ, **self.env}, cwd=self.config.parent, stdout=log, stderr=log)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as s:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"bridge exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
                try:
                    async with s.get(f"{self.url}/healthz") as r:
                        if r.status in (200, 503):
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if loop.time() > deadline:
                    raise TimeoutError("bridge did not start")
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no drain — what a crash or an OOM kill does."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc and self.proc.returncode is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 60)
