"""The ``attachments:`` block of ``bridge.yaml``: how much of a shared file is read, and which kinds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["text", "pdf", "docx", "image"]
ALL_KINDS: tuple[Kind, ...] = ("text", "pdf", "docx", "image")


class AttachmentsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(20_000_000, ge=1, le=200_000_000)  # larger files are never downloaded
    max_text_tokens: int = Field(20_000, ge=100)  # text read from one file; longer is cut, and the model told
    types: tuple[Kind, ...] = ALL_KINDS  # what is read; any other kind gets a plain sentence
