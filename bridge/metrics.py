"""Prometheus metrics, one registry per bridge (so tests and embedders can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("bridge_events_total", "Incoming platform events, by what became of them",
                              ["platform", "outcome"], registry=self.registry)
        self.replies = Counter("bridge_replies_total", "Replies delivered", ["platform"], registry=self.registry)
        self.errors = Counter("bridge_errors_total", "Failures while answering", ["platform", "kind"],
                              registry=self.registry)
        self.relayed = Counter("bridge_relayed_total", "Relayed copies, by the platform posted to and outcome",
                               ["platform", "outcome"], registry=self.registry)
        self.llm_errors = Counter("bridge_llm_errors_total", "Failed LLM calls (every attempt, retried or not)",
                                  ["kind"], registry=self.registry)
        self.llm_attempts = Counter("bridge_llm_attempts_total", "LLM requests, by outcome (ok or a failure kind)",
                                    ["outcome"], registry=self.registry)
        self.llm_retries = Counter("bridge_llm_retries_total", "LLM requests retried after a failure", ["kind"],
                                   registry=self.registry)
        self.llm_latency = Histogram("bridge_llm_latency_seconds", "LLM request time, first byte to last",
                                     registry=self.registry,
                                     buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120))
        self.llm_tokens = Counter("bridge_llm_tokens_total", "Tokens reported by the LLM server", ["kind"],
                                  registry=self.registry)

        self.tokens = Counter("bridge_tokens_total", "Tokens spent on answers (the server's count, else ours)",
                              ["platform", "persona", "model", "kind"], registry=self.registry)
        self.files = Counter("bridge_files_total", "Shared files, by what became of them (the kind read, or why not)",
                             ["platform", "outcome"], registry=self.registry)
        self.refused = Counter("bridge_refused_total", "Messages not answered: access refused, or a budget used up",
                               ["platform", "reason"], registry=self.registry)
        self.feedback = Counter("bridge_feedback_total", "Ratings people gave answers (a changed rating counts "
                                "again)", ["platform", "persona", "rating"], registry=self.registry)
        self.tool_calls = Counter("bridge_tool_calls_total", "Tool calls the model made, by tool and outcome "
                                  "(ok, error, timeout, unavailable, unknown)", ["tool", "outcome"],
                                  registry=self.registry)

    def count_tokens(self, prompt: int | None, completion: int | None) -> None:
        self.llm_tokens.labels(kind="prompt").inc(prompt or 0)
        self.llm_tokens.labels(kind="completion").inc(completion or 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
