"""GitHub beyond issue comments, end to end: Discussions (GraphQL), pull-request review threads and
``trigger: label:NAME``. Signed webhooks shaped like GitHub's published examples → the bridge's HTTP
server → githubkit → the loopback fake GitHub; the LLM is the loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.app import Bridge
from bridge.config import Config
from platforms.github import GitHubPlatform
from tests.crash import answered, crash_on_record
from tests.fakes.github_server import FakeGitHub, fixture, user_id
from tests.fakes.openai_server import FakeOpenAI
from tests.test_cli import bridge_cli
from tests.test_github import SECRET, GitHubHarness, fake_github
from tests.waiting import until

__all__ = ["fake_github"]

REPO = "Codertocat/Hello-World"
DISCUSSION = "MDEwOkRpc2N1c3Npb24zMjk5NjE0"  # the example's node id

YAML = """
storage: {url: "sqlite:///bridge.db"}
llm: {base_url: "${LLM_URL}", model: fake, max_retries: 0, timeout_s: 5}
server: {port: 0, max_body_bytes: 65536}
admins: {github: [Codertocat]}
platforms:
  github:
    token: ${GITHUB_TOKEN}
    webhook_secret: ${GITHUB_WEBHOOK_SECRET}
    api_url: ${GITHUB_URL}
    max_reply_chars: ${MAX_CHARS:-65536}
channels:
  - {platform: github, where: "octo-org/qa", kind: discussion, category: "Q&A", trigger: always}
  - {platform: github, where: "Codertocat/*", kind: discussion, trigger: always}
  - {platform: github, where: "Codertocat/*", kind: review, trigger: mention}
  - {platform: github, where: "octo-org/labelled", trigger: "label:ask-bot"}
  - {platform: github, where: "octo-org/talk", kind: discussion, trigger: "label:ask-bot"}
"""


@pytest.fixture
def threads_config(make_config: Callable[..., Config], fake_llm: FakeOpenAI,
                   fake_github: FakeGitHub) -> Callable[..., Config]:
    def make(**env: str) -> Config:
        return make_config(YAML, LLM_URL=fake_llm.url, GITHUB_TOKEN="ghp_testtoken123",
                           GITHUB_WEBHOOK_SECRET=SECRET, GITHUB_URL=fake_github.url, **env)
    return make


@pytest.fixture
async def gh(threads_config: Callable[..., Config], fake_github: FakeGitHub,
             fake_llm: FakeOpenAI) -> AsyncIterator[GitHubHarness]:
    bridge = Bridge(threads_config())
    await bridge.start()
    yield GitHubHarness(bridge, fake_github, fake_llm)
    await bridge.stop()


def discussion_payload(title: str, body: str, *, repo: str = REPO, category: str = "General") -> dict[str, Any]:
    p = copy.deepcopy(fixture("discussion.created.1"))
    p["discussion"].update(title=title, body=body)
    p["discussion"]["category"]["name"] = category
    p["repository"]["full_name"] = repo
    return p


def discussion_comment(body: str, node_id: str, *, parent: int | None = None,
                       login: str = "Codertocat", association: str = "OWNER") -> dict[str, Any]:
    p = copy.deepcopy(fixture("discussion_comment.created.1"))
    p["comment"].update(body=body, node_id=node_id, parent_id=parent, author_association=association)
    p["comment"]["user"].update(login=login, id=user_id(login))
    p["sender"].update(login=login, id=user_id(login))
    return p


def review_comment(body: str, comment_id: int, *, in_reply_to: int | None = None) -> dict[str, Any]:
    p = copy.deepcopy(fixture("pull_request_review_comment.created.1"))
    p["comment"].update(body=body, id=comment_id)
    if in_reply_to is not None:
        p["comment"]["in_reply_to_id"] = in_reply_to
    return p


def labeled_payload(label: str, *, labels: list[str], repo: str = "octo-org/labelled",
                    number: int = 7) -> dict[str, Any]:
    p = copy.deepcopy(fixture("issues.labeled.1"))
    p["label"]["name"] = label
    p["issue"].update(number=number, title="Build fails on ARM", body="cargo build dies with SIGILL.",
                      labels=[{**p["label"], "name": n} for n in labels])
    p["repository"]["full_name"] = repo
    return p


# ------------------------------------------------------------------------------------------- discussions

async def test_a_new_discussion_is_answered_with_a_discussion_comment(gh: GitHubHarness) -> None:
    gh.gh.add_discussion(REPO, 4, DISCUSSION)
    status, body = await gh.deliver("discussion", discussion_payload("Why SIGILL?", "On ARM it dies."))
    assert (status, body) == (202, {"accepted": True})
    [reply] = await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))
    assert reply.body == "You said: Why SIGILL?\n\nOn ARM it dies."
    assert reply.reply_to is None, "an answer to the discussion itself is a top-level comment"
    assert "addDiscussionComment" in gh.gh.graphql_operations


async def test_a_reply_in_a_discussion_thread_is_answered_in_that_thread(gh: GitHubHarness) -> None:
    gh.gh.add_discussion(REPO, 4, DISCUSSION)
    gh.gh.add_discussion_comment(DISCUSSION, "DC_top", "Does it happen on x86?")
    gh.gh.add_discussion_comment(DISCUSSION, "DC_reply", "no, only ARM", reply_to="DC_top")
    await gh.deliver("discussion_comment", discussion_comment("no, only ARM", "DC_reply", parent=550001))
    [reply] = await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))
    assert reply.body == "You said: no, only ARM"
    assert reply.reply_to == "DC_top", "GitHub nests one level: the answer goes under the thread's top comment"


async def test_discussions_follow_their_rule_kind_and_category(gh: GitHubHarness) -> None:
    qa = "D_qa"
    gh.gh.add_discussion("octo-org/qa", 4, qa)
    p = discussion_payload("General chat", "hello", repo="octo-org/qa", category="General")
    p["discussion"]["node_id"] = qa
    assert await gh.deliver("discussion", p) == (202, {"accepted": False}), "not the rule's category"
    p = discussion_payload("A question", "how?", repo="octo-org/qa", category="q&a")
    p["discussion"]["node_id"] = qa
    assert await gh.deliver("discussion", p) == (202, {"accepted": True}), "categories match case-insensitively"
    # An issue in a repository whose only rules are for discussions and reviews: no rule of kind issue.
    issue = copy.deepcopy(fixture("issues.opened.1"))
    assert await gh.deliver("issues", issue) == (202, {"accepted": False})
    # And a rule without kind: is for issues: a labelled discussion there is not its business.
    p = discussion_payload("A question", "how?", repo="octo-org/labelled")
    p["discussion"]["labels"] = [{"name": "ask-bot"}]
    assert await gh.deliver("discussion", p) == (202, {"accepted": False})


async def test_answer_from_an_admin_marks_the_bots_reply_in_a_q_and_a_category(gh: GitHubHarness) -> None:
    discussion = gh.gh.add_discussion(REPO, 4, DISCUSSION)
    await gh.deliver("discussion", discussion_payload("Why SIGILL?", "On ARM it dies."))
    [reply] = await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))

    gh.gh.add_discussion_comment(DISCUSSION, "DC_x", "/answer", login="mallory")  # on GitHub, as delivered
    gh.gh.add_discussion_comment(DISCUSSION, "DC_y", "/answer")
    stranger = discussion_comment("/answer", "DC_x", login="mallory", association="NONE")
    assert (await gh.deliver("discussion_comment", stranger))[1] == {
        "ignored": "only the bot's admins can mark an answer"}
    assert discussion.answer is None

    status, body = await gh.deliver("discussion_comment", discussion_comment("/answer", "DC_y"))
    assert status == 202
    assert discussion.answer == reply.node_id, body
    assert len(gh.llm.requests) == 1, "/answer is not a question for the model"


async def test_answer_in_a_thread_marks_the_bots_reply_in_that_thread(gh: GitHubHarness) -> None:
    discussion = gh.gh.add_discussion(REPO, 4, DISCUSSION)
    gh.gh.add_discussion_comment(DISCUSSION, "DC_top", "Does it happen on x86?")
    gh.gh.add_discussion_comment(DISCUSSION, "DC_r", "no, only ARM", reply_to="DC_top")
    await gh.deliver("discussion_comment", discussion_comment("no, only ARM", "DC_r", parent=1))
    [reply] = await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))
    gh.gh.add_discussion_comment(DISCUSSION, "DC_a", "/answer", reply_to="DC_top")
    status, body = await gh.deliver("discussion_comment", discussion_comment("/answer", "DC_a", parent=1))
    assert (status, body) == (202, {"answer": f"marked {reply.node_id} as the answer"})
    assert discussion.answer == reply.node_id


async def test_answer_without_admins_is_for_the_repositorys_people(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, fake_github: FakeGitHub) -> None:
    config = make_config(YAML.replace("admins: {github: [Codertocat]}\n", ""), LLM_URL=fake_llm.url,
                         GITHUB_TOKEN="ghp_testtoken123", GITHUB_WEBHOOK_SECRET=SECRET, GITHUB_URL=fake_github.url)
    assert config.admins is None
    discussion = fake_github.add_discussion(REPO, 4, DISCUSSION)
    bridge = Bridge(config)
    await bridge.start()
    try:
        h = GitHubHarness(bridge, fake_github, fake_llm)
        await h.deliver("discussion", discussion_payload("Why SIGILL?", "On ARM it dies."))
        [reply] = await until(lambda: fake_github.bot_discussion_comments(DISCUSSION))
        fake_github.add_discussion_comment(DISCUSSION, "DC_x", "/answer", login="mallory")
        passer_by = discussion_comment("/answer", "DC_x", login="mallory", association="NONE")
        assert (await h.deliver("discussion_comment", passer_by))[1] == {
            "ignored": "only the bot's admins can mark an answer"}
        fake_github.add_discussion_comment(DISCUSSION, "DC_m", "/answer", login="maintainer")
        member = discussion_comment("/answer", "DC_m", login="maintainer", association="MEMBER")
        await h.deliver("discussion_comment", member)
        assert discussion.answer == reply.node_id
    finally:
        await bridge.stop()


async def test_answer_where_github_refuses_it_says_so(gh: GitHubHarness) -> None:
    gh.gh.add_discussion(REPO, 4, DISCUSSION, answerable=False)  # not a Q&A category
    await gh.deliver("discussion", discussion_payload("Why SIGILL?", "On ARM it dies."))
    await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))
    gh.gh.add_discussion_comment(DISCUSSION, "DC_y", "/answer")
    status, body = await gh.deliver("discussion_comment", discussion_comment("/answer", "DC_y"))
    assert (status, body) == (202, {"error": "GitHub refused to mark the answer (is the category Q&A?)"})


async def test_discussion_comment_posted_but_not_recorded_is_not_posted_again(
        threads_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = threads_config()
    fake_github.add_discussion(REPO, 4, DISCUSSION)
    first = Bridge(config, shutdown_grace_s=0.1)
    await first.start()
    hanging = crash_on_record(first)
    await GitHubHarness(first, fake_github, fake_llm).deliver("discussion", discussion_payload("Q", "why?"))
    await until(hanging.is_set)
    await first.stop()
    assert len(fake_github.bot_discussion_comments(DISCUSSION)) == 1  # posted, never recorded

    second = Bridge(config)
    await second.start()
    try:
        await answered(second)
        assert [c.body for c in fake_github.bot_discussion_comments(DISCUSSION)] == ["You said: Q\n\nwhy?"]
    finally:
        await second.stop()


async def test_discussions_keep_the_issue_rules(gh: GitHubHarness) -> None:
    gh.gh.add_discussion(REPO, 4, DISCUSSION)
    bot = discussion_comment("I am a bot", "DC_b", login="dependabot[bot]")
    bot["comment"]["user"]["type"] = bot["sender"]["type"] = "Bot"
    assert await gh.deliver("discussion_comment", bot) == (202, {"ignored": "sent by a bot"})
    edited = discussion_comment("changed my mind", "DC_e")
    edited["action"] = "edited"
    assert await gh.deliver("discussion_comment", edited) == (
        202, {"ignored": "discussion_comment.edited is not a new message"})
    locked = discussion_payload("Q", "why?")
    locked["discussion"]["locked"] = True
    assert await gh.deliver("discussion", locked) == (202, {"ignored": "the conversation is closed"})

    # A stranger is refused (the default allows owners, members, collaborators), told once.
    gh.gh.add_discussion_comment(DISCUSSION, "DC_s", "hi")
    stranger = discussion_comment("hi", "DC_s", login="mallory", association="NONE")
    assert await gh.deliver("discussion_comment", stranger) == (202, {"accepted": False})
    [notice] = await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))
    assert notice.body.startswith("Sorry, I'm not set up to answer you here.")
    assert notice.reply_to is None, "a top-level comment is answered at the top level"

    # The model's text pings nobody.
    gh.llm.reply = lambda _req: "ask @octo-org/security or @octocat"
    gh.gh.add_discussion_comment(DISCUSSION, "DC_q", "who knows?")
    await gh.deliver("discussion_comment", discussion_comment("who knows?", "DC_q"))
    replies = await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION)[1:])
    assert replies[0].body == "ask @\u200bocto-org/security or @\u200boctocat"


async def test_a_long_discussion_answer_is_split(threads_config: Callable[..., Config], fake_github: FakeGitHub,
                                                 fake_llm: FakeOpenAI) -> None:
    paragraphs = [f"Paragraph {i}: " + "word " * 60 for i in range(12)]
    fake_llm.reply = lambda _req: "\n\n".join(paragraphs)
    fake_github.add_discussion(REPO, 4, DISCUSSION)
    bridge = Bridge(threads_config(MAX_CHARS="1000"))
    await bridge.start()
    try:
        await GitHubHarness(bridge, fake_github, fake_llm).deliver("discussion", discussion_payload("Q", "long"))
        await answered(bridge)
        parts = [c.body for c in fake_github.bot_discussion_comments(DISCUSSION)]
        assert len(parts) > 3
        assert all(len(p) <= 1000 for p in parts)
        assert "\n\n".join(parts) == "\n\n".join(paragraphs), "cut between paragraphs, in order, nothing lost"
    finally:
        await bridge.stop()


# ---------------------------------------------------------------------------------------- review threads

async def test_a_review_comment_is_answered_in_its_thread_with_the_diff_in_view(gh: GitHubHarness) -> None:
    gh.gh.add_review_comment(REPO, 2, 284312630, "@bridge-bot why is this unsafe?")
    status, body = await gh.deliver("pull_request_review_comment",
                                    review_comment("@bridge-bot why is this unsafe?", 284312630))
    assert (status, body) == (202, {"accepted": True})
    [reply] = await until(lambda: gh.gh.review_thread(REPO, 284312630))
    prompt = gh.llm.requests[0]["messages"][-1]["content"]
    assert "README.md" in prompt, "the model sees the path"
    assert "-# Hello-World" in prompt, "and the hunk"
    assert prompt.endswith("why is this unsafe?")
    assert reply.startswith("You said: Review comment on `README.md`")

    # A reply in the same thread continues it without a mention: the same conversation.
    gh.gh.add_review_comment(REPO, 2, 284312700, "and on x86?", in_reply_to=284312630)
    await gh.deliver("pull_request_review_comment", review_comment("and on x86?", 284312700,
                                                                   in_reply_to=284312630))
    await until(lambda: len(gh.gh.review_thread(REPO, 284312630)) == 3)  # the question and two answers
    assert gh.bridge.store is not None
    [summary] = await gh.bridge.store.sessions()
    assert summary.session.key == f"github:{REPO}#reviews/2/284312630"

    # The bridge's own reply comes back as a webhook: ignored.
    own = review_comment("You said: …", 284312800, in_reply_to=284312630)
    own["comment"]["user"].update(login="bridge-bot", type="Bot")
    own["sender"].update(login="bridge-bot", type="Bot")
    assert await gh.deliver("pull_request_review_comment", own) == (202, {"ignored": "sent by a bot"})
    closed = review_comment("@bridge-bot still there?", 284312900, in_reply_to=284312630)
    closed["pull_request"]["state"] = "closed"
    assert await gh.deliver("pull_request_review_comment", closed) == (
        202, {"ignored": "the conversation is closed"})


async def test_eyes_show_a_slow_review_answer_is_being_written(gh: GitHubHarness) -> None:
    gh.gh.add_review_comment(REPO, 2, 284312630, "@bridge-bot why?")
    gh.llm.hold = asyncio.Event()
    await gh.deliver("pull_request_review_comment", review_comment("@bridge-bot why?", 284312630))
    await until(lambda: gh.gh.reactions_on("review_comment:284312630") == ["eyes"], timeout=5)
    assert gh.gh.review_thread(REPO, 284312630) == []
    gh.llm.hold.set()
    await until(lambda: gh.gh.review_thread(REPO, 284312630))
    await until(lambda: gh.gh.reactions_on("review_comment:284312630") == [])


async def test_review_reply_posted_but_not_recorded_is_not_posted_again(
        threads_config: Callable[..., Config], fake_github: FakeGitHub, fake_llm: FakeOpenAI) -> None:
    config = threads_config()
    fake_github.add_review_comment(REPO, 2, 284312630, "@bridge-bot why?")
    first = Bridge(config, shutdown_grace_s=0.1)
    await first.start()
    hanging = crash_on_record(first)
    await GitHubHarness(first, fake_github, fake_llm).deliver(
        "pull_request_review_comment", review_comment("@bridge-bot why?", 284312630))
    await until(hanging.is_set)
    await first.stop()
    assert len(fake_github.review_thread(REPO, 284312630)) == 1

    second = Bridge(config)
    await second.start()
    try:
        await answered(second)
        assert len(fake_github.review_thread(REPO, 284312630)) == 1, "exactly one reply"
    finally:
        await second.stop()


# ------------------------------------------------------------------------------------------------ labels

async def test_labelling_an_issue_starts_it_with_its_body_and_comments(gh: GitHubHarness) -> None:
    repo = "octo-org/labelled"
    gh.gh.add_comment(repo, 7, "same here on a Pi 4", login="alice")
    gh.gh.add_comment(repo, 7, "and on Graviton", login="bob")
    unlabelled = copy.deepcopy(fixture("issue_comment.created.2"))
    unlabelled["issue"].update(number=7, labels=[])
    unlabelled["repository"]["full_name"] = repo
    assert await gh.deliver("issue_comment", unlabelled) == (202, {"accepted": False}), "no label, no answer"

    assert await gh.deliver("issues", labeled_payload("bug", labels=["bug"])) == (
        202, {"ignored": "issues.labeled is not a new message"}), "not the trigger's label"
    status, body = await gh.deliver("issues", labeled_payload("ask-bot", labels=["bug", "ask-bot"]))
    assert (status, body) == (202, {"accepted": True})
    reply = (await gh.comments(repo, 7, 3))[-1]
    prompt = gh.llm.requests[0]["messages"][-1]["content"]
    assert prompt.index("Build fails on ARM") < prompt.index("@alice wrote:\nsame here on a Pi 4") \
        < prompt.index("@bob wrote:\nand on Graviton"), "title and body, then the comments oldest first"
    assert reply.startswith("You said: Build fails on ARM")

    # Labelled, a comment is answered; a redelivered label event is the same message (answered once).
    assert (await gh.deliver("issues", labeled_payload("ask-bot", labels=["bug", "ask-bot"])))[1] == {
        "accepted": False}
    labelled = copy.deepcopy(unlabelled)
    labelled["issue"]["labels"] = [{"name": "ask-bot"}]
    labelled["comment"]["id"] = 99
    assert await gh.deliver("issue_comment", labelled) == (202, {"accepted": True})


async def test_labelling_a_discussion_starts_it_with_its_comments(gh: GitHubHarness) -> None:
    gh.gh.add_discussion("octo-org/talk", 4, DISCUSSION)
    gh.gh.add_discussion_comment(DISCUSSION, "DC_1", "same on a Pi 4", login="alice")
    gh.gh.add_discussion_comment(DISCUSSION, "DC_2", "and on Graviton", login="bob", reply_to="DC_1")
    created = discussion_payload("Build fails on ARM", "SIGILL", repo="octo-org/talk")
    assert await gh.deliver("discussion", created) == (202, {"accepted": False}), "not labelled yet"

    labeled = copy.deepcopy(created)
    labeled.update(action="labeled", label={"name": "ask-bot"})
    labeled["discussion"]["labels"] = [{"name": "ask-bot"}]
    assert await gh.deliver("discussion", labeled) == (202, {"accepted": True})
    await until(lambda: gh.gh.bot_discussion_comments(DISCUSSION))
    prompt = gh.llm.requests[0]["messages"][-1]["content"]
    assert prompt.index("Build fails on ARM") < prompt.index("@alice wrote:\nsame on a Pi 4") \
        < prompt.index("@bob wrote:\nand on Graviton")


def test_a_labelled_issues_history_is_bounded_keeping_the_newest() -> None:
    from bridge.types import Author, Incoming, ThreadRef
    from platforms.github.labels import with_history

    msg = Incoming(ThreadRef("github", "", "o/r", "7"), "issues:1", Author("1", "a"), "Title\n\nBody")
    comments = [(f"user{i}", f"comment {i} " + "x" * 80) for i in range(50)]
    text = with_history(msg, comments, budget_chars=1000).text
    assert len(text) <= 1000
    assert text.startswith("Title\n\nBody\n\n(")
    assert "earlier comment(s) left out" in text
    assert text.endswith("comment 49 " + "x" * 80), "the newest comments are the ones kept, oldest first"
    assert "@user48 wrote" in text
    assert "@user0 wrote" not in text


async def test_labelling_a_pull_request_starts_it_too(gh: GitHubHarness) -> None:
    p = copy.deepcopy(fixture("pull_request_review_comment.created.1"))  # its pull_request object
    payload = {"action": "labeled", "number": 2, "pull_request": p["pull_request"],
               "label": {"name": "ask-bot"}, "repository": {**p["repository"], "full_name": "octo-org/labelled"},
               "sender": p["sender"]}
    payload["pull_request"]["labels"] = [{"name": "ask-bot"}]
    payload["pull_request"]["author_association"] = "OWNER"
    assert await gh.deliver("pull_request", payload) == (202, {"accepted": True})
    [reply] = await gh.comments("octo-org/labelled", 2, 1)
    assert reply.startswith("You said: Update the README with new information.")


# ------------------------------------------------------------------------------------------------ config

async def test_bridge_check_rejects_misused_github_rule_keys(tmp_path: Path) -> None:
    (tmp_path / "bridge.yaml").write_text(
        "platforms: {github: {token: t0k3n-value, webhook_secret: s3cret-value}}\n"
        "channels:\n"
        "  - {platform: github, trigger: sometimes}\n"
        "  - {platform: github, trigger: 'label:'}\n"
        "  - {platform: github, category: 'Q&A'}\n"
        "  - {platform: github, kind: thread}\n"
        "  - {platform: github, where: 'o/r', kind: discussion, category: 'Q&A', trigger: 'label:ask-bot'}\n")
    code, out, err = await bridge_cli("check", "--config", str(tmp_path / "bridge.yaml"))
    said = out + err
    assert code != 0
    assert "channels.0: trigger: 'sometimes' is not one of always, mention, label:NAME" in said
    assert "channels.1: trigger: label:NAME needs a label name" in said
    assert "channels.2: category: a discussion category name, only with kind: discussion" in said
    assert "channels.3.kind" in said
    assert "channels.4" not in said, "a discussion rule with a category and a label trigger is fine"
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------- check --online

async def test_check_online_says_what_the_app_lacks_for_discussions_and_reviews(
        make_config: Callable[..., Config], fake_llm: FakeOpenAI, fake_github: FakeGitHub, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    config = make_config(YAML.replace("token: ${GITHUB_TOKEN}", "app_id: 29310\n    private_key: app.pem"),
                         LLM_URL=fake_llm.url, GITHUB_WEBHOOK_SECRET=SECRET, GITHUB_URL=fake_github.url)
    assert config.platforms.github is not None
    platform = GitHubPlatform(config.platforms.github, config)
    try:
        await _lacks(platform, fake_github)
    finally:
        await platform.stop()  # closes its connection pool


async def _lacks(platform: GitHubPlatform, fake_github: FakeGitHub) -> None:
    said = [f.text for f in await platform.diagnose() if f.level == "missing"]
    assert said == [
        "github: the app lacks Discussions: Read and write, which the kind: discussion rules need "
        "(app settings → Permissions & events)",
        "github: the app lacks Pull requests: Read and write, which the kind: review rules need "
        "(app settings → Permissions & events)",
        "github: the app is not subscribed to discussion, discussion_comment, pull_request_review_comment events"]

    fake_github.app_permissions.update(discussions="write", pull_requests="write")
    fake_github.app_events += ["discussion", "discussion_comment", "pull_request_review_comment"]
    assert [f.text for f in await platform.diagnose() if f.level == "missing"] == []
