"""Reading a model's context window out of what OpenAI-compatible servers say about themselves.

There is no standard field: llama.cpp reports the running server's window in ``GET /props``;
vLLM puts ``max_model_len`` on each ``GET /v1/models`` entry; OpenRouter, LM Studio and others use
``context_length`` / ``max_context_length``; llama.cpp's model entries carry the *training* window
(``meta.n_ctx_train``), an upper bound used last. Pure functions, so each shape is tested alone.
"""

from __future__ import annotations

from typing import Any

_ENTRY_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length", "n_ctx")


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return int(value)
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return None


def window_from_props(props: Any) -> int | None:
    """llama.cpp ``GET /props``: ``default_generation_settings.n_ctx`` (or a top-level ``n_ctx``)."""
    if not isinstance(props, dict):
        return None
    settings = props.get("default_generation_settings")
    if isinstance(settings, dict) and (n := _positive_int(settings.get("n_ctx"))):
        return n
    return _positive_int(props.get("n_ctx"))


def window_from_models(listing: Any, model: str) -> int | None:
    """``GET /models``: the window field of the entry for ``model`` (or of the only entry)."""
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return None
    dicts = [e for e in entries if isinstance(e, dict)]
    chosen = [e for e in dicts if e.get("id") == model] or (dicts if len(dicts) == 1 else [])
    for entry in chosen:
        for key in _ENTRY_KEYS:
            if n := _positive_int(entry.get(key)):
                return n
        for nested in ("meta", "top_provider", "details"):
            inner = entry.get(nested)
            if isinstance(inner, dict):
                for key in (*_ENTRY_KEYS, "n_ctx_train"):
                    if n := _positive_int(inner.get(key)):
                        return n
    return None


def model_ids(listing: Any) -> list[str]:
    entries = listing.get("data") if isinstance(listing, dict) else None
    return [str(e["id"]) for e in entries or [] if isinstance(e, dict) and "id" in e]
