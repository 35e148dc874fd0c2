"""Assignment `video_action`: the course's VideoAnalyzer, extended to action recognition.

Fill in the functions and classes below (keep their names and signatures: the grader calls
them directly). README.md explains each one; `torchgrade check video_action` runs the public
checks.

The ids in square brackets name the README's rules (the checks name the ones they pin). Bad
arguments raise ValueError naming the argument [conv.names-argument]. Frames are RGB:
OpenCV decodes BGR, so convert after cap.read() [frames.rgb].
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
    ((2 * i + 1) * total_frames) // (2 * num_frames), in integer arithmetic [uniform.centres];
    num_frames indices, non-decreasing, in [0, total_frames) [uniform.range].

    Raises:
        ValueError: total_frames or num_frames is not a positive int [uniform.args].
    """
    raise NotImplementedError("uniform_frame_indices: sample segment centres")


def keyframe_indices(frames: np.ndarray, num_keyframes: int) -> list[int]:
    """The num_keyframes frames i >= 1 with the largest mean absolute difference between the
    uint8 grayscale images (cv2.COLOR_RGB2GRAY) of frames i and i - 1 [keyframes.diff],
    returned sorted, ties to the lower index [keyframes.top-k]; frame 0 never is one
    [keyframes.frame-zero].

    Raises:
        ValueError: num_keyframes is not a positive int or exceeds T - 1 [keyframes.count].
    """
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
        """Decode video_path and return (frames [num_frames, H, W, 3] uint8 RGB, indices)
        [extract.output].

        strategy "uniform" uses uniform_frame_indices on the decoded frame count
        [extract.uniform]; "keyframe" applies keyframe_indices to all decoded frames with
        min(num_frames, T - 1) keyframes and pads by repeating the last index
        [extract.keyframe]. A short video still gives num_frames frames [extract.short]; a
        one-frame video with "keyframe" gives frame 0 num_frames times
        [extract.single-frame].

        Raises:
            ValueError: strategy is not "uniform" or "keyframe" [extract.strategy]; the file
                is missing, empty, truncated (fewer frames decode than it reports) or not a
                video, the message naming the path [files.broken].
        """
        raise NotImplementedError("extract_frames: decode, sample, convert to RGB")

    def build_vlm_messages(self, frames: np.ndarray, actions: list[str]) -> list[dict]:
        """[system message, user message] in OpenAI chat format [vlm.messages].

        The user content interleaves "Frame k/T:" text parts with image_url parts
        (data:image/jpeg;base64,..., detail "low") [vlm.frames], then lists the allowed
        actions and asks for JSON {"action": ...} [vlm.tail]. The JPEGs keep the frames'
        colours (cv2.imencode expects BGR) [vlm.jpeg-colours]; frames whose longest side
        exceeds 512 pixels are resized [vlm.resize].
        """
        raise NotImplementedError("build_vlm_messages: the OpenAI chat request")

    def parse_action_response(self, text: str, actions: list[str]) -> str:
        """The allowed action the text names, as spelled in actions.

        JSON {"action": ...}, also inside a ``` code fence [parse.json], or plain text naming
        exactly one allowed action as whole words [parse.plain]; case ignored, spaces,
        underscores and hyphens equivalent [parse.spelling].

        Raises:
            ValueError: the text names no allowed action, several, or JSON naming an action
                not allowed [parse.refuse].
        """
        raise NotImplementedError("parse_action_response: read the VLM's answer")

    def recognize_action(self, video_path: str | Path, actions: list[str],
                         num_frames: int = 8) -> ActionPrediction:
        """ActionPrediction(label, scores) for the video.

        With a client: one client.chat.completions.create(model=self.model, messages=...,
        max_tokens=...), its answer parsed and scored 1.0, the others 0.0 [recognize.vlm].
        Else the classifier on [1, T, 3, H, W] float frames in [0, 1], scores the softmax
        over actions [recognize.classifier].

        Raises:
            RuntimeError: neither a client nor a classifier [recognize.none].
        """
        raise NotImplementedError("recognize_action: VLM or local classifier")


class TemporalActionClassifier(nn.Module):
    """Clips [B, T, C, H, W] float in [0, 1], any H and W -> logits [B, A] [classifier.shapes],
    using the order of frames."""

    def __init__(self, num_actions: int, num_frames: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        raise NotImplementedError("TemporalActionClassifier: a model that sees motion")

    def forward(self, clips: Tensor) -> Tensor:
        raise NotImplementedError("TemporalActionClassifier.forward")


def train_action_classifier(clips: Tensor, labels: Tensor, *, epochs: int, lr: float,
                            generator: torch.Generator | None = None
                            ) -> TemporalActionClassifier:
    """Train a TemporalActionClassifier (num_actions = labels.max() + 1) on clips
    [N, T, C, H, W] in [0, 1] with int64 labels [N]: Adam and cross-entropy, shuffled with
    generator; return it in eval mode [train.returns]. Trained on fresh clips by the grader,
    it reaches the rubric's held-out accuracy [train.accuracy]."""
    raise NotImplementedError("train_action_classifier")
