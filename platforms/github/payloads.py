"""The few webhook fields the bridge reads, as lenient models.

githubkit's typed webhook models are strict, and real payloads in older shapes (GitHub Enterprise
Server still sends them) fail them; a real event must never be dropped for a field we don't read.
These models take only what we need and ignore the rest.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class User(_Lenient):
    login: str
    id: int = 0
    type: str = "User"
    avatar_url: str = ""


class Repository(_Lenient):
    full_name: str


class Label(_Lenient):
    name: str


class Issue(_Lenient):
    id: int = 0
    number: int
    title: str = ""
    body: str | None = None
    state: str = "open"
    user: User | None = None
    author_association: str | None = None  # OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...
    labels: list[Label] = []
    node_id: str = ""


class Category(_Lenient):
    name: str = ""
    is_answerable: bool = False


class Discussion(Issue):
    category: Category = Category()
    locked: bool = False


class Comment(_Lenient):
    id: int
    body: str | None = None
    user: User
    author_association: str | None = None
    node_id: str = ""
    parent_id: int | None = None       # discussion comments: the comment this one replies to
    in_reply_to_id: int | None = None  # review comments: the thread's first comment
    diff_hunk: str | None = None       # review comments: the lines the comment is on
    path: str | None = None


class Installation(_Lenient):
    id: int


class Event(_Lenient):
    action: str | None = None
    repository: Repository | None = None
    sender: User | None = None
    issue: Issue | None = None
    pull_request: Issue | None = None  # same fields we need: number, title, body, state, user
    comment: Comment | None = None
    discussion: Discussion | None = None
    label: Label | None = None  # ``labeled``: the label just added
    installation: Installation | None = None
