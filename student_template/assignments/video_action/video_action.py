"""Assignment `video_action`: the course's VideoAnalyzer, extended to action recognition.

Fill in the functions and classes below (keep their names and signatures: the grader calls
them directly). README.md explains each one; `torchgrade check video_action` runs the public
checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn


def uniform_frame_indices(total_frames: int, num_frames: int) -> list[int]:
    """The centres of num_frames equal segments of [0, total_frames): index i is
    ((2 * i + 1) * total_frames) // (2 * num_frames), in integer arithmetic. ValueError
    naming the argument if total_frames or num_frames is not a positive int."""
    raise NotImplementedError("uniform_frame_indices: sample segment centres")


def keyframe_indices(frames: np.ndarray, num_keyframes: int) -> list[int]:
    """The num_keyframes frames i >= 1 with the largest mean absolute difference between the
    uint8 grayscale images (cv2.COLOR_RGB2GRAY) of frames i and i - 1, returned sorted; ties
    go to the lower index. ValueError if num_keyframes > T - 1 (or not a positive int)."""
    raise NotImplementedError("keyframe_indices: frames that differ most")


@dataclass(frozen=True)
class ActionPrediction:
    """What ``recognize_action`` returns: the label and a score per allowed action."""

    label: str
    scores: dict[str, float] = field(default_factory=dict)


class VideoAnalyzer:
    """Frames from a video file; an action from a local classifier or an OpenAI-style VLM."""

    def __init__(self, classifier: nn.Module | None = None, client: Any = None,
                 model: str = "gpt-4o") -> None:
        self.classifier = classifier
        self.client = client
        self.model = model

    def extract_frames(self, video_path: str | Path, num_frames: int = 8,
                       strategy: str = "uniform") -> tuple[np.ndarray, list[int]]:
        """Decode video_path and return (frames [num_frames, H, W, 3] uint8 RGB, indices).
        strategy "uniform" uses uniform_frame_indices; "keyframe" applies keyframe_indices to
        all decoded frames and pads by repeating the last index. A missing, empty, truncated
        or non-video file raises ValueError naming the path."""
        raise NotImplementedError("extract_frames: decode, sample, convert to RGB")

    def build_vlm_messages(self, frames: np.ndarray, actions: list[str]) -> list[dict]:
        """[system message, user message]: the user content interleaves "Frame k/T:" text
        parts with image_url parts (data:image/jpeg;base64,..., detail "low"), then lists
        the allowed actions and asks for JSON {"action": ...}. cv2.imencode expects BGR."""
        raise NotImplementedError("build_vlm_messages: the OpenAI chat request")

    def parse_action_response(self, text: str, actions: list[str]) -> str:
        """The allowed action the text names: JSON {"action": ...} (also inside a ``` code
        fence) or plain text naming exactly one allowed action as whole words (case ignored;
        spaces, underscores and hyphens equivalent). Anything else: ValueError."""
        raise NotImplementedError("parse_action_response: read the VLM's answer")

    def recognize_action(self, video_path: str | Path, actions: list[str],
                         num_frames: int = 8) -> ActionPrediction:
        """ActionPrediction(label, scores): with a client, ask the VLM
        (client.chat.completions.create(model=..., messages=..., max_tokens=...)) and score
        its answer 1.0; else run the classifier on [1, T, 3, H, W] float frames in [0, 1] and
        score the softmax over actions. Neither: RuntimeError."""
        raise NotImplementedError("recognize_action: VLM or local classifier")


class TemporalActionClassifier(nn.Module):
    """Clips [B, T, C, H, W] float in [0, 1] -> logits [B, A], using the order of frames."""

    def __init__(self, num_actions: int, num_frames: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        raise NotImplementedError("TemporalActionClassifier: a model that sees motion")

    def forward(self, clips: Tensor) -> Tensor:
        raise NotImplementedError("TemporalActionClassifier.forward")


def train_action_classifier(clips: Tensor, labels: Tensor, *, epochs: int, lr: float,
                            generator: torch.Generator | None = None
                            ) -> TemporalActionClassifier:
    """Train a TemporalActionClassifier (num_actions = labels.max() + 1) on clips
    [N, T, C, H, W] in [0, 1] with int64 labels [N]; shuffle with generator; return it in
    eval mode."""
    raise NotImplementedError("train_action_classifier")
