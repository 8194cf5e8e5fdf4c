"""``bridge check --online`` for Slack: ``auth.test`` with the bot token (its scopes come in the
``X-OAuth-Scopes`` header) and, for Socket Mode, the app token against ``apps.connections.open``."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.config import SlackConfig
from bridge.diagnosis import Finding

NEEDED_SCOPES = ("app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history",
                 "chat:write")
NICE_SCOPES = ("users:read",)
FILES_SCOPE = "files:read"  # files shared in a thread are downloaded with the bot token
ASSISTANT_SCOPE = "assistant:write"
# What a workspace or token without the streaming feature answers (any other error: the method is there).
STREAMING_REFUSALS = frozenset({"unknown_method", "not_allowed_token_type", "missing_scope", "feature_not_enabled",
                                "not_authed", "method_deprecated", "team_access_not_granted"})
RELAY_SCOPE = "chat:write.customize"  # relayed copies posted under their author's name and icon


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


async def diagnose_slack(settings: SlackConfig, client: AsyncWebClient) -> list[Finding]:
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else "error"
        return [Finding("missing", f"slack: Slack refused platforms.slack.bot_token ({error})")]
    except OSError as exc:
        return [Finding("missing", f"slack: cannot reach {settings.api_url} ({type(exc).__name__})")]
    found = [Finding("ok", f"slack: signed in as {auth.get('user')} ({auth.get('user_id')}) in team "
                           f"{auth.get('team')} ({auth.get('team_id')})")]
    header = _header(dict(auth.headers), "x-oauth-scopes")
    if header is None:
        found.append(Finding("warning", "slack: Slack did not list the bot token's scopes"))
    else:
        scopes = {s.strip() for s in header.split(",")}
        missing = [s for s in NEEDED_SCOPES if s not in scopes]
        if missing:
            found.append(Finding("missing", f"slack: the bot token lacks the scopes {', '.join(missing)}: add "
                                            "them (OAuth & Permissions) and reinstall the app"))
        else:
            found.append(Finding("ok", "slack: bot scopes cover mentions, threads, DMs and posting"))
        for scope in NICE_SCOPES:
            if scope not in scopes:
                found.append(Finding("warning", f"slack: without {scope} the model sees user ids, not names"))
        if RELAY_SCOPE not in scopes:
            found.append(Finding("warning", f"slack: the bot token lacks {RELAY_SCOPE}: relayed messages "
                                            "(shares with relay: true) show their author's name in bold "
                                            "instead of as the poster; add it (OAuth & Permissions) and "
                                            "reinstall the app"))
        if FILES_SCOPE not in scopes:
            found.append(Finding("warning", f"slack: the bot token lacks {FILES_SCOPE}: files shared in a "
                                            "conversation cannot be read; add it (OAuth & Permissions) and "
                                            "reinstall the app"))
        if settings.assistant:
            found.append(Finding("ok", "slack: assistant pane allowed (assistant:write): greeting, prompts, status, "
                                       "titles") if ASSISTANT_SCOPE in scopes else Finding(
                "warning", f"slack: assistant: true, but the bot token lacks {ASSISTANT_SCOPE}: the assistant pane "
                           "gets no status, suggested prompts or titles (add the scope, turn on Agents & AI Apps, "
                           "reinstall; or set assistant: false)"))
    found.extend(await surfaces(settings, client))
    if settings.app_token is not None:
        app_client = AsyncWebClient(token=settings.app_token.get_secret_value(), base_url=client.base_url)
        try:
            await app_client.apps_connections_open(app_token=settings.app_token.get_secret_value())
            found.append(Finding("ok", "slack: the app token may open Socket Mode connections"))
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "error"
            found.append(Finding("missing", f"slack: Slack refused platforms.slack.app_token ({error}): an "
                                            "app-level token (xapp-) with connections:write, Socket Mode on"))
    if settings.signing_secret is not None:
        found.append(Finding("ok", "slack: HTTP mode: the signing secret is checked by Slack's URL "
                                   "verification, not here"))
    return found


async def surfaces(settings: SlackConfig, client: AsyncWebClient) -> list[Finding]:
    """Native streaming (probed with a call that cannot post: no channel) and the feedback buttons."""
    found: list[Finding] = []
    if settings.streaming == "native":
        try:
            await client.chat_startStream(channel="", thread_ts="")
            error = ""
        except SlackApiError as exc:
            error = str(exc.response.get("error") if exc.response is not None else "error")
        except OSError as exc:
            error = type(exc).__name__
        if error in STREAMING_REFUSALS:
            found.append(Finding("warning", f"slack: native streaming refused ({error}): answers are streamed with "
                                            "edits instead (or set streaming: edit)"))
        else:
            found.append(Finding("ok", "slack: native streaming allowed (chat.startStream)"))
    if settings.feedback:
        found.append(Finding("ok", "slack: feedback buttons on: clicks need Interactivity turned on in the app's "
                                   "settings (Slack does not tell the API whether it is)"))
    return found
