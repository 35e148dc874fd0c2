"""A test double of an OpenAI-style chat client: it records requests and returns canned answers.

Why it exists: the video_action grader checks ``VideoAnalyzer``'s VLM path without a network
and without the ``openai`` package. ``FakeOpenAIClient`` has the one method the contract uses,
``client.chat.completions.create(model=..., messages=..., max_tokens=...)``, answers with the
next of its canned replies (the last one repeats), and keeps a plain-data copy of every request
in ``requests`` for the grader to read back across the sandbox boundary. It is built inside the
worker with ``student.construct("torchgrade.course.fake_openai:FakeOpenAIClient", answers)``
and handed to the student's ``VideoAnalyzer(client=...)`` as a handle.

It is a fake, not OpenAI: nothing here talks to a server.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass
class FakeMessage:
    content: str
    role: str = "assistant"


@dataclass
class FakeChoice:
    message: FakeMessage
    index: int = 0
    finish_reason: str = "stop"


@dataclass
class FakeCompletion:
    choices: list[FakeChoice]
    model: str = ""
    id: str = "fake-completion"


def _plain(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` holding only str/int/float/bool/None, lists and str-keyed dicts;
    anything else becomes its type's name (so the record can always cross back)."""
    if depth > 20:
        return "<too deep>"
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


class _Completions:
    def __init__(self, owner: FakeOpenAIClient) -> None:
        self._owner = owner

    def create(self, *, model: str, messages: list, **kwargs: Any) -> FakeCompletion:
        return self._owner._answer(model, messages, kwargs)


class _Chat:
    def __init__(self, owner: FakeOpenAIClient) -> None:
        self.completions = _Completions(owner)


class FakeOpenAIClient:
    """Records each ``chat.completions.create`` call; answers with ``answers`` in turn."""

    def __init__(self, answers: list[str] | str) -> None:
        self.answers = [answers] if isinstance(answers, str) else list(answers)
        if not self.answers:
            raise ValueError("answers must hold at least one canned reply")
        self.requests: list[dict[str, Any]] = []
        self.chat = _Chat(self)

    def _answer(self, model: str, messages: list, kwargs: dict) -> FakeCompletion:
        record = {"model": _plain(model), "messages": _plain(copy.deepcopy(messages))}
        record.update({k: _plain(v) for k, v in kwargs.items()})
        self.requests.append(record)
        text = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        return FakeCompletion(choices=[FakeChoice(FakeMessage(text))], model=str(model))

    def recorded(self) -> list[dict[str, Any]]:
        """The requests so far, as plain data."""
        return copy.deepcopy(self.requests)

