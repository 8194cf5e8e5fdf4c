"""``bridge.yaml``: loaded once into typed models, or rejected with the file, key path and fix.

Loading is three steps: parse YAML, substitute ``${VAR}`` / ``${VAR:-default}`` (remembering
which key each variable sits under), then validate with pydantic. Missing variables only count
when the part that needs them is enabled, and all of them are reported in one message.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from bridge.attachments.config import AttachmentsConfig
from bridge.policy.config import AccessList, Admins, Limits, Price, check_rule_access
from bridge.relay.config import ShareConfig, relay_problems
from bridge.tools.config import NAME_PATTERN, ToolServerConfig

PLATFORM_NAMES = ("github", "slack", "discord")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# A whole value that is a template word, or a template marker anywhere in it (``sk-...``,
# ``xoxb-your-token-here``, ``<token>``, ``changeme123``): README examples pasted as they are.
_PLACEHOLDERS = re.compile(r"^(xxx+|todo)$|change-?me|\.\.\.|…|your[-_ ].*[-_ ]here|^your[-_ ]|<[^<>]*>",
                           re.IGNORECASE)


class ConfigError(Exception):
    """Every problem found in one config file, each naming the key path and what to do."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


class _Model(BaseModel):
    # Unknown keys are errors: a typo must not pass silently.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        return (Path(base) / value).resolve()
    return value


def _reject_placeholder(value: SecretStr | None, info: ValidationInfo | None = None) -> SecretStr | None:
    if info is not None and info.data.get("enabled") is False:
        return value  # a switched-off platform's values are not used: a template may stay in place
    text = value.get_secret_value().strip() if value is not None else ""
    if _PLACEHOLDERS.search(text):
        shown = f" (it starts {text[:5]!r})" if len(text) > 5 else ""  # a short prefix, never the whole value
        raise ValueError(f"looks like a placeholder, not a real secret{shown}: put the real value in an "
                         "environment variable and reference it as ${VAR}")
    return value


class StorageConfig(_Model):
    url: str = "sqlite:///bridge.db"
    lease_s: float = Field(30.0, ge=1, le=3600)  # PostgreSQL: a dead replica's sessions are taken over after this

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v.startswith(("postgresql://", "postgres://")):
            from bridge.store.postgres import url_problem

            problem = url_problem(v)
            if problem:
                raise ValueError(problem)
            return v
        if not v.startswith("sqlite:///") and v != "sqlite://:memory:":
            raise ValueError("use sqlite:///PATH (relative to the config file) or "
                             "postgresql://USER:${PGPASSWORD}@HOST:PORT/DATABASE")
        return v

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith(("postgresql://", "postgres://"))

    def path(self, base_dir: Path) -> str:
        """The database file, relative paths taken from the config file's folder (PostgreSQL: the URL
        without its password, fit to show)."""
        if self.is_postgres:
            from bridge.store.postgres import redact

            return redact(self.url)
        raw = self.url.removeprefix("sqlite:///").removeprefix("sqlite://")
        if raw == ":memory:":
            return raw
        p = Path(raw)
        return str(p if p.is_absolute() else (base_dir / p).resolve())


class LLMConfig(_Model):
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr = SecretStr("")
    model: str = "gpt-4o-mini"
    timeout_s: float = Field(60.0, gt=0)            # one request: waiting for its start, or for the next chunk
    answer_timeout_s: float = Field(180.0, gt=0)    # extension: one answer, every retry included
    max_concurrent: int = Field(64, ge=1, le=10_000)  # extension: answers being written at once (others queue)
    max_retries: int = Field(3, ge=0, le=10)
    context_tokens: int = Field(8000, ge=256)
    stream: bool = True
    max_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0, le=2)
    prices: dict[str, Price] = {}  # model -> USD per 1M tokens, for `bridge usage`

    @field_validator("api_key")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr | None:
        return _reject_placeholder(v)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)  # webhooks larger than this get 413


class _PlatformModel(_Model):
    enabled: bool = True  # extension: keep a block in the file but switched off


class GitHubConfig(_PlatformModel):
    token: SecretStr | None = None
    app_id: int | None = None
    private_key: SecretStr | None = None  # PEM text, or a path to a .pem file
    installation_id: int | None = None
    webhook_secret: SecretStr | None = None
    api_url: str = "https://api.github.com"
    max_reply_chars: int = Field(65536, ge=1000, le=65536)
    # App auth: at start, failed webhook deliveries this recent are redelivered (0: off; GitHub keeps 3 days).
    redeliver_hours: float = Field(24, ge=0, le=72)
    feedback: bool = False  # read 👍/👎 reactions on the bot's answers when the issue is next seen

    @field_validator("token", "private_key", "webhook_secret")
    @classmethod
    def _secrets(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _reject_placeholder(v, info)

    @model_validator(mode="after")
    def _auth(self) -> GitHubConfig:
        if not self.enabled:
            return self
        if not self.token and not (self.app_id and self.private_key):
            raise ValueError("set token (a personal access token) or app_id + private_key (a GitHub App)")
        if not self.webhook_secret:
            raise ValueError("webhook_secret is required: the same secret you typed in the repository's "
                             "webhook settings")
        return self


class SlackConfig(_PlatformModel):
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    max_reply_chars: int = Field(3000, ge=200, le=12000)  # markdown_text takes at most 12,000
    edit_interval_s: float = Field(1.0, ge=0)
    reply_deadline_s: float = Field(120.0, gt=0)  # how long Slack may keep refusing a reply's message
    assistant: bool = True     # Slack's AI-app surface: greeting, suggested prompts, status, thread titles
    streaming: Literal["native", "edit"] = "native"  # chat.startStream/appendStream/stopStream, or chat.update
    feedback: bool = False     # thumbs up/down buttons under each final answer, stored per person

    @field_validator("bot_token", "app_token", "signing_secret")
    @classmethod
    def _secrets(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _reject_placeholder(v, info)

    @model_validator(mode="after")
    def _mode(self) -> SlackConfig:
        if not self.enabled:
            return self
        if not self.bot_token:
            raise ValueError("bot_token (xoxb-...) is required")
        if not self.app_token and not self.signing_secret:
            raise ValueError("set app_token (xapp-..., Socket Mode) or signing_secret (HTTP Events API)")
        return self


class DiscordConfig(_PlatformModel):
    token: SecretStr | None = None
    api_url: str = "https://discord.com/api/v10"
    edit_interval_s: float = Field(1.0, ge=0)
    # Catch-up after start and reconnects (Discord does not redeliver what the bot missed):
    catchup_max_age_s: float = Field(86400.0, ge=0)  # look back at most this far; 0: no catch-up
    catchup_max_messages: int = Field(100, ge=0, le=1000)  # per channel
    commands: bool = True  # application commands: /ask, /reset, /persona, /personas, /usage, /help
    feedback: bool = False  # thumbs up/down buttons under each final answer, stored per person

    @field_validator("token")
    @classmethod
    def _secrets(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _reject_placeholder(v, info)

    @model_validator(mode="after")
    def _token(self) -> DiscordConfig:
        if self.enabled and not self.token:
            raise ValueError("token is required: the bot token from the Discord developer portal")
        return self


class PlatformsConfig(_Model):
    github: GitHubConfig | None = None
    slack: SlackConfig | None = None
    discord: DiscordConfig | None = None

    def enabled(self) -> dict[str, Any]:
        """Name → settings of every platform present and not switched off."""
        out: dict[str, Any] = {}
        for name in PLATFORM_NAMES:
            settings = getattr(self, name)
            if settings is not None and settings.enabled:
                out[name] = settings
        return out


def rule_key_problems(platform: str, trigger: str, kind: str | None, category: str | None) -> list[str]:
    """What is wrong with a rule's ``trigger``/``kind``/``category``, each as a sentence naming the fix."""
    problems = []
    label = trigger.removeprefix("label:") if trigger.startswith("label:") else None
    if trigger not in ("always", "mention") and label is None:
        problems.append(f"trigger: {trigger!r} is not one of always, mention, label:NAME")
    elif label is not None and (not label.strip() or platform != "github"):
        problems.append("trigger: label:NAME needs a label name, and only GitHub rules have labels")
    if kind is not None and platform != "github":
        problems.append("kind: only GitHub rules have a kind (issue, discussion or review)")
    if category is not None and (kind != "discussion" or not category.strip()):
        problems.append("category: a discussion category name, only with kind: discussion")
    return problems


class ChannelRule(_Model):
    platform: Literal["github", "slack", "discord", "console"]
    where: str = "*"
    persona: str | None = None  # default_persona when unset
    trigger: str = "mention"  # always | mention | label:NAME (GitHub)
    kind: Literal["issue", "discussion", "review"] | None = None  # GitHub: unset means issue
    category: str | None = None  # GitHub discussions: only this category
    share: str | None = None
    continue_threads: bool = True  # extension: thread replies continue without a mention
    allow: AccessList | None = None  # who may talk here (GitHub default: OWNER, MEMBER, COLLABORATOR)
    deny: AccessList | None = None
    limits: Limits | None = None     # overrides the top-level limits, key by key
    refusal_message: str | None = None  # for people not allowed here; "" says nothing; unset: the top-level one

    @field_validator("where", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v  # an unquoted Discord id arrives as an int

    @model_validator(mode="after")
    def _github_keys(self) -> ChannelRule:
        """``kind``, ``category`` and label triggers only mean something on GitHub: said at load, not ignored."""
        problems = rule_key_problems(self.platform, self.trigger, self.kind, self.category)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Config(_Model):
    storage: StorageConfig = StorageConfig()
    llm: LLMConfig = LLMConfig()
    server: ServerConfig = ServerConfig()
    personas_dir: Path = Field(Path("prompts"), validate_default=True)
    default_persona: str = "assistant"
    platforms: PlatformsConfig = PlatformsConfig()
    channels: list[ChannelRule] = []
    limits: Limits = Limits()
    admins: Admins | None = None     # unset: everyone may run every command
    attachments: AttachmentsConfig = AttachmentsConfig()  # files and images shared in a conversation
    tools: dict[str, ToolServerConfig] = {}  # MCP servers personas may use (bridge/tools)
    shares: dict[str, ShareConfig] = {}  # what a share group does besides being one session (relay)
    refusal_message: str = ("Sorry, I'm not set up to answer you here. If you think you should have access, "
                            "ask the people who run this bot.")
    # Not read from YAML: where the file lives (for relative paths and messages). Set by the loader.
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="bridge.yaml", exclude=True)

    @field_validator("personas_dir")
    @classmethod
    def _dir(cls, v: Path, info: ValidationInfo) -> Path:
        return _resolve(v, info)

    @model_validator(mode="after")
    def _channels_need_platforms(self) -> Config:
        present = {n for n in PLATFORM_NAMES if getattr(self.platforms, n) is not None}
        for i, rule in enumerate(self.channels):
            if rule.platform not in present:
                raise ValueError(f"channels.{i}.platform: {rule.platform!r} has no block under platforms:; "
                                 f"add platforms.{rule.platform} or remove this rule")
        return self

    @model_validator(mode="after")
    def _places_exist(self) -> Config:
        """A ``where`` no place can have would silently match nothing: refuse it with the fix."""
        from bridge.places import place_problem

        problems = [f"channels[{i}].where: {p}" for i, rule in enumerate(self.channels)
                    if (p := place_problem(rule.platform, rule.where)) is not None]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _access_fits_platform(self) -> Config:
        problems = [f"channels.{i}.{p}" for i, rule in enumerate(self.channels)
                    for p in check_rule_access(rule.platform, rule.allow, rule.deny)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _one_persona_per_share(self) -> Config:
        """A shared session has one persona, whichever of its channels speaks first."""
        named: dict[str, tuple[int, str]] = {}
        for i, rule in enumerate(self.channels):
            if not rule.share:
                continue
            persona = rule.persona or self.default_persona
            first = named.setdefault(rule.share, (i, persona))
            if first[1] != persona:
                raise ValueError(f"channels.{i}.persona: {persona!r}, but channels.{first[0]} puts the same "
                                 f"share {rule.share!r} under {first[1]!r}; a shared session has one persona: "
                                 "name the same persona on every rule of this share")
        return self

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, v: dict[str, ToolServerConfig]) -> dict[str, ToolServerConfig]:
        bad = [name for name in v if not re.match(NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: a tool server's name is letters, digits, - and _ "
                             "(at most 41), as it may prefix its tools' names")
        return v
    @model_validator(mode="after")
    def _relay_needs_places(self) -> Config:
        problems = relay_problems(self.channels, self.shares)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def db_path(self) -> str:
        return self.storage.path(self.base_dir)


# ---------------------------------------------------------------------------------------- loading


@dataclass
class _Missing:
    var: str
    path: str


def _interpolate(node: Any, path: str, env: dict[str, str], missing: list[_Missing],
                 used: dict[str, list[str]] | None = None) -> Any:
    """Substitute variables; ``used`` collects key path → the variables its value came from."""
    used = {} if used is None else used
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, missing, used) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}.{i}", env, missing, used) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    names = [m.group(1) for m in _VAR.finditer(node)]
    if names:
        used[path] = names

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            missing.append(_Missing(name, path))
            return ""
        return value

    before = len(missing)
    out = _VAR.sub(sub, node)
    # pydantic coerces "8080" and "false" itself; a lone missing variable becomes "not set".
    if len(missing) > before and _VAR.fullmatch(node.strip()):
        return None
    return out


def _disabled_prefixes(data: dict[str, Any]) -> list[str]:
    platforms = data.get("platforms") or {}
    if not isinstance(platforms, dict):
        return []
    return [f"platforms.{name}." for name, block in platforms.items()
            if isinstance(block, dict) and block.get("enabled") is False]


def _explain(err: ErrorDetails, model: type[BaseModel], used: dict[str, list[str]] | None = None) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = _allowed_keys(model, err["loc"][:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            hint = f"did you mean {close[0]!r}? "
        else:  # a key at the wrong indentation: say where it belongs
            elsewhere = _key_paths_like(model, key)
            hint = f"did you mean {' or '.join(elsewhere)} (check the indentation)? " if elsewhere else ""
        return f"{loc}: unknown key. {hint}Allowed here: {', '.join(sorted(allowed))}"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"{loc}: required, but not set"
    names = (used or {}).get(loc)
    if names:  # the value was substituted: name the variable to fix (never its value)
        msg += f" (the value comes from {', '.join('${' + n + '}' for n in names)})"
    return f"{loc}: {msg}" if loc else msg


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    args = getattr(annotation, "__args__", ())
    for a in (annotation, *args):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
        if a is not annotation and hasattr(a, "__args__") and (inner := _nested_model(a)) is not None:
            return inner
    return None


def _key_paths_like(model: type[BaseModel], key: str, prefix: str = "") -> list[str]:
    """Dotted paths of nested keys named ``key`` (or nearly), e.g. ``port`` → ``server.port``."""
    found: list[str] = []
    for name, field in model.model_fields.items():
        if name in ("base_dir", "source"):
            continue
        nested = _nested_model(field.annotation)
        if nested is None or "dict[" in str(field.annotation):  # keyed by a name (llm.prices.MODEL): no fixed path
            continue
        path = f"{prefix}{name}{'[]' if 'list' in str(field.annotation) else ''}"
        keys = [k for k in nested.model_fields if k not in ("base_dir", "source")]
        found += [f"{path}.{k}" for k in difflib.get_close_matches(key, keys, n=1)]
        found += _key_paths_like(nested, key, f"{path}.")
    return found


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    keyed = False  # the part after a dict-valued field is a key of the user's choosing (llm.prices.MODEL)
    for part in loc:
        if isinstance(part, int) or keyed:
            keyed = False
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        current = candidates[0]
        keyed = getattr(ann, "__origin__", None) is dict
    return [k for k in getattr(current, "model_fields", {}) if k not in ("base_dir", "source")]


def parse_config(text: str, *, source: str = "bridge.yaml", base_dir: Path | None = None,
                 env: dict[str, str] | None = None, platforms: bool = True) -> Config:
    """Parse YAML text into a :class:`Config`, or raise :class:`ConfigError` listing every problem.

    ``platforms=False`` loads the file for commands that use no platform (``chat``, ``sessions``,
    ``backup``): every platform counts as switched off, so its variables need not be exported.
    """
    env = dict(os.environ) if env is None else env
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys (storage:, llm:, platforms:, ...)"])

    if not platforms and isinstance(data.get("platforms"), dict):
        data["platforms"] = {name: {**block, "enabled": False} if isinstance(block, dict) else block
                             for name, block in data["platforms"].items()}
    missing: list[_Missing] = []
    used: dict[str, list[str]] = {}
    data = _interpolate(data, "", env, missing, used)
    skip = _disabled_prefixes(data)
    needed = [m for m in missing if not any(m.path.startswith(p) for p in skip)]
    if needed:
        names = sorted({m.var for m in needed})
        detail = "; ".join(f"${{{m.var}}} at {m.path}" for m in needed)
        raise ConfigError(source, [
            f"environment variable(s) not set: {', '.join(names)} ({detail}). Export them, or write "
            "${VAR:-default} in the file, or set enabled: false on the platform that needs them"])

    base = (base_dir or Path(".")).resolve()
    data["base_dir"] = base
    data["source"] = source
    try:
        return Config.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        problems = [_explain(e, Config, used) for e in exc.errors(include_url=False)]
        raise ConfigError(source, problems) from None


def default_config_path() -> Path:
    return Path(os.environ.get("BRIDGE_CONFIG") or "bridge.yaml")


def load_config(path: Path | str | None = None, env: dict[str, str] | None = None, *,
                platforms: bool = True) -> Config:
    """Read and validate a config file; relative paths inside it are relative to its folder."""
    p = Path(path) if path is not None else default_config_path()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), ["file not found: pass --config PATH or set BRIDGE_CONFIG"]) from None
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, source=str(p), base_dir=p.parent, env=env, platforms=platforms)
