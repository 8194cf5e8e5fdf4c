"""``bridge run | check | chat | sessions``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys
from pathlib import Path

from bridge import __version__
from bridge.app import Bridge, check_personas, run
from bridge.config import ChannelRule, Config, ConfigError, load_config
from bridge.personas import load_personas
from bridge.platform import PlatformStartError, load_factory
from bridge.store import Store

log = logging.getLogger("bridge")


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config) if args.config else None)


# ------------------------------------------------------------------------------------------ run


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(config, stop)

    asyncio.run(main())
    return 0


# ---------------------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    personas = load_personas(config.personas_dir)
    check_personas(config, personas)
    enabled = config.platforms.enabled()
    print(f"config OK: {config.source}")
    print(f"storage:   {config.db_path}")
    print(f"llm:       {config.llm.model} at {config.llm.base_url} (context {config.llm.context_tokens} tokens, "
          f"{'streaming' if config.llm.stream else 'not streaming'})")
    if not config.llm.api_key.get_secret_value() and "api.openai.com" in config.llm.base_url:
        print("warning:   llm.api_key is empty; api.openai.com will refuse requests (set OPENAI_API_KEY)")
    print(f"personas:  {', '.join(sorted(personas))} (default: {config.default_persona})")
    print(f"platforms: {', '.join(enabled) or 'none enabled'}")
    rows = [("platform", "where", "persona", "trigger", "session")]
    for rule in config.channels:
        state = "" if rule.platform in enabled else " (disabled)"
        rows.append((rule.platform + state, rule.where, rule.persona or config.default_persona, rule.trigger,
                     f"share:{rule.share}" if rule.share else "per thread"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print("channels:")
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not config.channels:
        print("  (no channel rules: only direct messages will be answered)")
    return 0


# ----------------------------------------------------------------------------------------- chat


def cmd_chat(args: argparse.Namespace) -> int:
    config = _config(args)
    persona = args.persona or config.default_persona
    # The terminal is a platform of its own: same core, store and LLM; no HTTP server, no other platforms.
    config = config.model_copy(update={
        "channels": [ChannelRule(platform="console", where="*", persona=persona, trigger="always")]})
    console = load_factory("console")(persona, config)

    async def main() -> None:
        bridge = Bridge(config, platforms={"console": console}, serve_http=False)
        if persona not in bridge.personas:
            raise ConfigError(str(config.personas_dir), [f"--persona: no persona {persona!r}; have "
                                                         f"{', '.join(sorted(bridge.personas))}"])
        await bridge.start()
        print(f"Talking to the {persona!r} persona ({config.llm.model}). /help for commands, Ctrl-D to quit.")
        try:
            await console.finished.wait()  # type: ignore[attr-defined]
        finally:
            await bridge.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print()
    return 0


# ------------------------------------------------------------------------------------- sessions


def cmd_sessions(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> int:
        store = await Store.open(config.db_path)
        try:
            if args.action == "list":
                summaries = await store.sessions()
                if not summaries:
                    print("no sessions yet")
                for s in summaries:
                    when = dt.datetime.fromtimestamp(s.session.updated_at).strftime("%Y-%m-%d %H:%M")
                    print(f"{s.session.id:>5}  {s.session.key:<40}  {s.session.persona:<16}  "
                          f"{s.messages:>4} msgs  {when}")
                return 0
            if not args.id:
                print(f"bridge sessions {args.action}: give a session id or key", file=sys.stderr)
                return 2
            session = await store.find_session(args.id)
            if session is None:
                print(f"no session {args.id!r} (see `bridge sessions list`)", file=sys.stderr)
                return 1
            if args.action == "reset":
                n = await store.reset(session.id)
                print(f"session {session.id} ({session.key}): forgot {n} message(s)")
                return 0
            print(f"session {session.id}: {session.key}, persona {session.persona}")
            for exchange in await store.transcript(session.id):
                m = exchange.message
                flag = "" if m.status == "answered" else f" [{m.status}]"
                print(f"--- {m.author.name or m.author.id}{flag}\n{m.content}")
                if exchange.reply is not None:
                    print(f"--- assistant\n{exchange.reply}")
            return 0
        finally:
            await store.close()

    return asyncio.run(main())


# ----------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description="Talk to an LLM from GitHub, Slack and Discord.")
    parser.add_argument("--version", action="version", version=f"bridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", help="config file (default: $BRIDGE_CONFIG or ./bridge.yaml)")
        return p

    add("run", "run every configured platform, the HTTP server and the core").set_defaults(func=cmd_run)
    add("check", "validate the config and personas offline").set_defaults(func=cmd_check)
    chat = add("chat", "talk to a persona in the terminal")
    chat.add_argument("--persona", help="persona name (default: default_persona)")
    chat.set_defaults(func=cmd_chat)
    sessions = add("sessions", "inspect the store")
    sessions.add_argument("action", nargs="?", choices=["list", "show", "reset"], default="list")
    sessions.add_argument("id", nargs="?", help="session id or key")
    sessions.set_defaults(func=cmd_sessions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except PlatformStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
