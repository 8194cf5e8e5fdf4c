"""``bridge run | check | chat | sessions | usage | backup``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.app import Bridge, check_personas, run
from bridge.config import ChannelRule, Config, ConfigError, LLMConfig, load_config
from bridge.conversation.tooluse import describe_tool_log
from bridge.llm.client import LLMClient, LLMFailure
from bridge.personas import load_personas
from bridge.platform import PlatformStartError, load_factory
from bridge.store.attachments import StoredFile
from bridge.store.files import folder_note, open_store, storage_problem
from bridge.store.lock import StoreInUse
from bridge.store.lock import hold as store_lock
from bridge.store.relays import CopyRecord

log = logging.getLogger("bridge")

# Loggers that narrate every HTTP request at INFO (openai's is httpx2 now, no longer httpx).
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai", "aiohttp.access")


def _config(args: argparse.Namespace, *, platforms: bool = True) -> Config:
    """``platforms=False``: the command uses no platform, so their variables need not be set."""
    return load_config(Path(args.config) if args.config else None, platforms=platforms)


# ------------------------------------------------------------------------------------------ run


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop where installed (Linux, macOS): the same asyncio API, about twice the network throughput."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(config, stop)

    with store_lock(config):  # one process per SQLite file: a second `bridge run` stops here
        run_loop(main())
    return 0


# ---------------------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    personas = load_personas(config.personas_dir)
    check_personas(config, personas)
    problem = storage_problem(config)
    if problem is not None:
        raise ConfigError(config.source, [problem])
    enabled = config.platforms.enabled()
    print(f"config OK: {config.source}")
    print(f"storage:   {config.db_path}{folder_note(config)}")
    print(f"llm:       {config.llm.model} at {config.llm.base_url} (context {config.llm.context_tokens} tokens, "
          f"{'streaming' if config.llm.stream else 'not streaming'})")
    if not config.llm.api_key.get_secret_value() and "api.openai.com" in config.llm.base_url:
        print("warning:   llm.api_key is empty; api.openai.com will refuse requests (set OPENAI_API_KEY)")
    print(f"personas:  {', '.join(sorted(personas))} (default: {config.default_persona})")
    print(f"platforms: {', '.join(enabled) or 'none enabled'}")
    if config.tools:
        from bridge.tools.check import describe

        print(f"tools:     {', '.join(describe(n, t) for n, t in config.tools.items())}")
    for persona in personas.values():  # bound personas were checked above; these are chosen with /persona
        absent = [name for name in persona.tools if name not in config.tools]
        if absent:
            print(f"warning:   persona {persona.name} names tool server(s) not under tools: here "
                  f"({', '.join(absent)}); it is offered only the tools that exist")
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
    _print_access(config)
    if not args.online:
        return 0
    return _check_online(config, personas)


def _print_access(config: Config) -> None:
    """Who each rule answers and what it may spend: the effective values, defaults included."""
    from bridge.policy.access import describe
    from bridge.policy.budgets import describe as describe_limits

    if config.channels:
        print("access and limits:")
    for i, rule in enumerate(config.channels):
        print(f"  {i}. {rule.platform} {rule.where}: answers {describe(rule)}")
        print(f"     limits: {describe_limits(config.limits.over(rule.limits))}")
        notice = config.refusal_message if rule.refusal_message is None else rule.refusal_message
        print(f"     refused people are told (once per thread): {notice!r}" if notice
              else "     refused people are told nothing")
    print(f"limits:    {describe_limits(config.limits)} (top level; direct messages without a rule)")
    if config.admins is None:
        print("admins:    not set: everyone may /persona, /reset shared sessions and /usage all")
    else:
        named = [f"{p}: {', '.join(getattr(config.admins, p))}" for p in ("slack", "discord", "github", "console")
                 if getattr(config.admins, p)]
        print(f"admins:    {'; '.join(named) or 'none listed: nobody'} (only they may /persona, /reset shared "
              "sessions and /usage all)")


def _check_online(config: Config, personas: dict[str, Any]) -> int:
    from bridge.diagnosis import diagnose

    print("online:")
    sys.stdout.flush()
    findings = asyncio.run(diagnose(config, personas))
    marks = {"ok": "ok      ", "warning": "warning ", "missing": "MISSING "}
    for f in findings:
        print(f"  {marks[f.level]}{f.text}")
    missing = sum(f.level == "missing" for f in findings)
    if missing:
        print(f"{missing} thing(s) missing: fix them, then run `bridge check --online` again")
        return 1
    print("online check OK")
    return 0


# ----------------------------------------------------------------------------------------- chat


async def _use_persona(config: Config, thread_key: str, persona: str) -> None:
    """The terminal conversation answers as the persona asked for, even after a ``/persona`` switch."""
    store = await open_store(config)
    try:
        session = await store.find_session(thread_key)
        if session is not None and session.persona != persona:
            await store.set_persona(session.id, persona)
    finally:
        await store.close()


async def served_model(settings: LLMConfig) -> str:
    """What the chat talks to: the model the server says it runs (a llama.cpp server runs one
    model whatever ``llm.model`` says), or a plain sentence when nobody answers at that address."""
    from bridge.metrics import Metrics

    llm = LLMClient(settings, Metrics())
    try:
        ids = await llm.models()
    except LLMFailure as failure:
        if failure.kind == "model":  # no model listing, but a server answered
            return f"{settings.model} at {settings.base_url}"
        why = {"auth": "it refused llm.api_key", "unreachable": "nothing answers there",
               "timeout": "it did not answer in time"}.get(failure.kind, f"it answered with an error ({failure.kind})")
        return (f"{settings.model}; but the LLM at {settings.base_url} cannot be used now: {why}. Start the server or "
                "fix llm.base_url, then try again")
    finally:
        await llm.close()
    if settings.model in ids or not ids:
        return f"{settings.model} at {settings.base_url}"
    if len(ids) == 1:  # llama.cpp names its model by the file's path: the file name says enough
        return f"{Path(ids[0]).name} at {settings.base_url}, which serves it for llm.model {settings.model!r}"
    return f"{settings.model} at {settings.base_url}, which does not list it"


def cmd_chat(args: argparse.Namespace) -> int:
    config = _config(args, platforms=False)
    persona = args.persona or config.default_persona
    personas = load_personas(config.personas_dir)
    if persona not in personas:
        raise ConfigError(str(config.personas_dir), [f"--persona: no persona {persona!r}; have "
                                                     f"{', '.join(sorted(personas))}"])
    # The terminal is a platform of its own: same core, store and LLM; no HTTP server, no other platforms.
    config = config.model_copy(update={
        "channels": [ChannelRule(platform="console", where="*", persona=persona, trigger="always")]})

    async def main() -> None:
        console: Any = load_factory("console")(persona, config)
        await _use_persona(config, console.thread.key, persona)
        bridge = Bridge(config, platforms={"console": console}, serve_http=False)
        quit_ = asyncio.Event()

        def on_interrupt() -> None:  # Ctrl-C: stop the answer being written; at the prompt, quit
            if not console.interrupt():
                quit_.set()

        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_interrupt)
        print(f"Talking to the {persona!r} persona ({await served_model(config.llm)}). /help for "
              "commands; Ctrl-C stops an answer; Ctrl-D or /quit to leave.", flush=True)
        await bridge.start()
        try:
            finished = asyncio.create_task(console.finished.wait())
            quitting = asyncio.create_task(quit_.wait())
            await asyncio.wait({finished, quitting}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            quitting.cancel()
        finally:
            await bridge.stop()
        print()

    asyncio.run(main())
    return 0


# ------------------------------------------------------------------------------------- sessions


def cmd_sessions(args: argparse.Namespace) -> int:
    config = _config(args, platforms=False)
    action = args.action or "list"

    async def main() -> int:
        store = await open_store(config)
        try:
            if action == "list":
                summaries = await store.sessions()
                if not summaries:
                    print("no sessions yet")
                    return 0
                print(f"{'id':>5}  {'session':<40}  {'persona':<16}  {'messages':>12}  last active")
                for s in summaries:
                    when = dt.datetime.fromtimestamp(s.session.updated_at).strftime("%Y-%m-%d %H:%M")
                    shown = f"{s.messages} message{'' if s.messages == 1 else 's'}"
                    print(f"{s.session.id:>5}  {s.session.key:<40}  {s.session.persona:<16}  {shown:>12}  {when}")
                return 0
            session = await store.find_session(args.id)
            if session is None:
                print(f"no session {args.id!r} (see `bridge sessions list`)", file=sys.stderr)
                return 1
            if action == "reset":
                # Counted as `sessions list` counts: the messages people sent (each reply goes with its message).
                count = await store.reset(session.id)
                print(f"session {session.id} ({session.key}): forgot {count} message(s)")
                return 0
            print(f"session {session.id}: {session.key}, persona {session.persona}")
            transcript = await store.transcript(session.id)
            files = await store.files([e.message.id for e in transcript])
            copies = await store.copies([e.message.id for e in transcript])  # relay shares
            for exchange in transcript:
                m = exchange.message
                flag = "" if m.status == "answered" else f" [{m.status}]"
                print(f"--- {m.author.name or m.author.id}{flag}\n{m.content}")
                for f in files.get(m.id, []):
                    print(f"  [file] {describe_file(f)}")
                for line in describe_tool_log(exchange.tool_log):
                    print(line)
                for c in copies.get(m.id, []):
                    if c.what == "message":
                        print(f"  [copy] {describe_copy(c)}")
                if exchange.reply is not None:
                    print(f"--- assistant\n{exchange.reply}")
                    for c in copies.get(m.id, []):
                        if c.what == "answer":
                            print(f"  [copy] {describe_copy(c)}")
            return 0
        finally:
            await store.close()

    return asyncio.run(main())


def describe_copy(c: CopyRecord) -> str:
    """One line per relayed copy in ``sessions show``: where, and whether it is there yet."""
    state = {"held": "waits for the answer", "pending": "not posted yet", "delivered": "posted",
             "failed": "gave up"}.get(c.state, c.state)
    return f"{c.place}: {state}" + (f" ({', '.join(c.platform_ids)})" if c.platform_ids else "")


def describe_file(f: StoredFile) -> str:
    """One line per shared file in ``sessions show``: its name, what was kept, or why it was not read."""
    if f.state == "read" and f.image:
        return f"{f.name}: image, kept resized ({len(f.image) * 3 // 4 // 1000} kB)"
    if f.state == "read":
        return f"{f.name}: {f.kind}, {f.tokens} tokens of text{' (cut)' if f.cut else ''}"
    if f.state == "failed":
        return f"{f.name}: not read ({f.problem})"
    return f"{f.name}: not read yet"


# ---------------------------------------------------------------------------------------- usage


def cmd_usage(args: argparse.Namespace) -> int:
    from bridge.policy.report import parse_since, render, render_feedback

    config = _config(args, platforms=False)
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> str:
        store = await open_store(config)
        try:
            if args.by == "feedback":
                return render_feedback(await store.feedback_report(since), since)
            lines = await store.usage_report(since, args.by)
        finally:
            await store.close()
        return render(lines, args.by, config.llm.prices, since)

    print(asyncio.run(main()))
    return 0


# --------------------------------------------------------------------------------------- backup


def cmd_backup(args: argparse.Namespace) -> int:
    from bridge.store.backups import backup_to

    config = _config(args, platforms=False)
    target, pages = backup_to(config, args.path, overwrite=args.overwrite)
    size = target.stat().st_size
    print(f"backed up {config.db_path} to {target} ({pages} pages, {size} bytes)")
    return 0


# -------------------------------------------------------------------------------------- migrate


def cmd_migrate(args: argparse.Namespace) -> int:
    from bridge.store.migrate import run_migrate

    config = _config(args, platforms=False)
    with store_lock(config):  # never migrate a file a running bridge is writing
        return run_migrate(config, args.to)


# ----------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description="Talk to an LLM from GitHub, Slack and Discord.")
    parser.add_argument("--version", action="version", version=f"bridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def config_option(p: argparse.ArgumentParser, default: Any = None) -> None:
        p.add_argument("--config", default=default, help="config file (default: $BRIDGE_CONFIG or ./bridge.yaml)")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        config_option(p)
        return p

    add("run", "run every configured platform, the HTTP server and the core").set_defaults(func=cmd_run)
    check = add("check", "validate the config and personas (offline unless --online)")
    check.add_argument("--online", action="store_true",
                       help="also reach the LLM (models, context window) and each enabled platform")
    check.set_defaults(func=cmd_check)
    chat = add("chat", "talk to a persona in the terminal")
    chat.add_argument("--persona", help="persona name (default: default_persona)")
    chat.set_defaults(func=cmd_chat)
    sessions = add("sessions", "inspect the store: list (default), show ID, reset ID")
    sessions.set_defaults(func=cmd_sessions, action=None)
    actions = sessions.add_subparsers(dest="action")
    # --config also after the action (`sessions show --config X KEY`); SUPPRESS keeps an earlier one.
    config_option(actions.add_parser("list", help="every session with its message count"), argparse.SUPPRESS)
    for name, help_ in (("show", "one session's history"), ("reset", "forget one session's history")):
        p = actions.add_parser(name, help=help_)
        p.add_argument("id", help="session id or key, e.g. github:octo-org/octo-repo#42")
        config_option(p, argparse.SUPPRESS)
    usage = add("usage", "messages, tokens and estimated cost (llm.prices) from the store")
    usage.add_argument("--since", default="7d", help="a span (7d, 24h, 2w) or a date (2026-01-31); default 7d")
    usage.add_argument("--by", default="user", choices=["user", "channel", "persona", "model", "day", "feedback"],
                       help="one row per ... (default: user)")
    usage.set_defaults(func=cmd_usage)
    backup_ = add("backup", "copy the SQLite store to PATH, online (safe while `bridge run` runs)")
    backup_.add_argument("path", nargs="?", default=None,
                         help="the backup file to create, or a folder (ending in /) to put a timestamped copy in; "
                              "default: a timestamped copy in the backups/ folder beside the database")
    backup_.add_argument("--overwrite", action="store_true", help="replace PATH when it exists")
    backup_.set_defaults(func=cmd_backup)
    migrate = add("migrate", "copy the SQLite store to PostgreSQL (before running several replicas)")
    migrate.add_argument("--to", required=True, metavar="URL",
                         help="postgresql://USER:${PGPASSWORD}@HOST:PORT/DB (${VAR} is read from the environment)")
    migrate.set_defaults(func=cmd_migrate)
    return parser


def _quiet_logging(verbose: bool, command: str) -> None:
    # In `bridge chat` the log shares the terminal with the conversation: errors only. `bridge check`
    # prints its own report: the libraries' narration (sign-ins, retry handlers) would only blur it.
    # A failed answer is already said in the chat in a plain sentence.
    quiet = {"chat": logging.ERROR, "check": logging.ERROR}
    level = logging.DEBUG if verbose else quiet.get(command, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_logging(args.verbose, args.command)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except (ConfigError, PlatformStartError, StoreInUse) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the command's own handling was in place
        return 130
    except BrokenPipeError:
        # `bridge sessions list | head`: the reader left; that is not an error. Point stdout at
        # /dev/null so the interpreter's own flush at exit does not complain again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
