"""A correct video_action submission, written differently from the reference.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

MAX_SIDE = 512  # frames sent to a VLM: longest side at most this
JPEG_QUALITY = 85
MAX_TOKENS = 64
BATCH_SIZE = 32


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _actions(actions: object) -> list[str]:
    if (not isinstance(actions, list | tuple) or not actions
            or not all(isinstance(a, str) and a.strip() for a in actions)):
        raise ValueError(f"actions must be a non-empty list of non-empty strings, got "
                         f"{actions!r}")
    return list(actions)


def _frames(frames: object, name: str = "frames") -> np.ndarray:
    if isinstance(frames, Tensor):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, list | tuple) and frames:
        frames = np.stack([np.asarray(f) for f in frames])
    if (not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3
            or frames.dtype != np.uint8 or frames.shape[0] < 1):
        got = (f"{frames.dtype} of shape {list(frames.shape)}" if isinstance(frames, np.ndarray)
               else type(frames).__name__)
        raise ValueError(f"{name} must be a uint8 array [T, H, W, 3] with T >= 1, got {got}")
    return frames


def _words(text: str) -> str:
    """Lower case; spaces, underscores and hyphens all one space."""
    return re.sub(r"[\s_\-]+", " ", text.lower()).strip()


def read_all_frames(video_path: str | Path) -> np.ndarray:
    """Every frame of the file, decoded in order, RGB: [T, H, W, 3] uint8, T >= 1."""
    path = Path(video_path)
    if not path.is_file():
        raise ValueError(f"video_path {str(path)!r} is not a file")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"video_path {str(path)!r} cannot be opened as a video")
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))  # OpenCV decodes BGR
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"video_path {str(path)!r} holds no decodable frames")
    if reported > 0 and len(frames) < reported:
        raise ValueError(f"video_path {str(path)!r} is truncated: {len(frames)} frames "
                         f"decoded, {reported} reported")
    return np.stack(frames)


def uniform_frame_indices(total_frames: int, num_frames: int) -> list[int]:
    """Centres of ``num_frames`` equal segments of ``[0, total_frames)``, in exact integers:
    ``((2 i + 1) * total_frames) // (2 * num_frames)``. Non-decreasing, in range; repeats
    when ``num_frames > total_frames``."""
    total = _positive_int(total_frames, "total_frames")
    num = _positive_int(num_frames, "num_frames")
    out = []
    for i in range(num):
        out.append((total * (2 * i + 1)) // (num * 2))
    return out


def keyframe_indices(frames: np.ndarray, num_keyframes: int) -> list[int]:
    """The ``num_keyframes`` frames ``i >= 1`` whose grayscale differs most from frame
    ``i - 1`` (mean absolute difference of the uint8 images), sorted; ties to the lower
    index."""
    frames = _frames(frames)
    k = _positive_int(num_keyframes, "num_keyframes")
    if k > frames.shape[0] - 1:
        raise ValueError(f"num_keyframes must be at most T - 1 = {frames.shape[0] - 1}, got {k}")
    gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    diffs = [float(cv2.absdiff(gray[i], gray[i - 1]).mean()) for i in range(1, len(gray))]
    best = np.argsort(-np.asarray(diffs), kind="stable")[:k] + 1  # stable: ties to lower i
    return sorted(int(i) for i in best)


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
        """``num_frames`` RGB frames [T, H, W, 3] uint8 and their indices in the video."""
        num = _positive_int(num_frames, "num_frames")
        if strategy not in ("uniform", "keyframe"):
            raise ValueError(f"strategy must be 'uniform' or 'keyframe', got {strategy!r}")
        frames = read_all_frames(video_path)
        total = frames.shape[0]
        if strategy == "uniform":
            indices = uniform_frame_indices(total, num)
        elif total < 2:
            indices = [0] * num
        else:
            indices = keyframe_indices(frames, min(num, total - 1))
            indices += [indices[-1]] * (num - len(indices))
        return frames[indices].copy(), indices

    def build_vlm_messages(self, frames: np.ndarray, actions: list[str]) -> list[dict]:
        """A system message and one user message: intro, "Frame k/T:" + image per frame, the
        allowed actions and the JSON instruction (OpenAI chat format)."""
        frames = _frames(frames)
        actions = _actions(actions)
        content: list[dict] = [{"type": "text", "text": f"These are {len(frames)} frames of "
                                "one video, in chronological order."}]
        for k, frame in enumerate(frames, start=1):
            h, w = frame.shape[:2]
            scale = min(MAX_SIDE / max(h, w), 1.0)
            if scale < 1.0:
                frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                                   interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]),  # RGB->BGR
                                   [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise ValueError(f"frame {k} cannot be JPEG-encoded")
            b64 = base64.standard_b64encode(buf.tobytes()).decode("ascii")
            content.append({"type": "text", "text": f"Frame {k}/{len(frames)}:"})
            content.append({"type": "image_url", "image_url": {
                "url": f"data:image/jpeg;base64,{b64}", "detail": "low"}})
        listed = ", ".join(actions)
        content.append({"type": "text", "text": (
            f"Which one of these actions does the video show: {listed}? Answer with JSON only, "
            'exactly {"action": "<one of the actions>"}.')})
        system = ("You are a video analysis expert. You are shown sequential frames of a "
                  "video; classify the primary action using the motion between frames.")
        return [{"role": "system", "content": system}, {"role": "user", "content": content}]

    def parse_action_response(self, text: str, actions: list[str]) -> str:
        """The allowed action ``text`` names: JSON ``{"action": ...}`` (also fenced) or plain
        text naming exactly one action as whole words; else ValueError."""
        actions = _actions(actions)
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        by_words = {_words(a): a for a in actions}
        fenced = re.fullmatch(r"\s*```[a-zA-Z]*\s*(.*?)\s*```\s*", text, flags=re.DOTALL)
        body = fenced.group(1) if fenced else text.strip()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            said = data.get("action")
            if isinstance(said, str) and _words(said) in by_words:
                return by_words[_words(said)]
            raise ValueError(f"text holds JSON whose 'action' is not one of {actions}: "
                             f"{said!r}")
        words = _words(text)
        named = [a for w, a in by_words.items()
                 if re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", words)]
        if len(named) != 1:
            raise ValueError(f"text names {len(named)} of the allowed actions {actions} "
                             f"(exactly one needed): {text[:200]!r}")
        return named[0]

    def recognize_action(self, video_path: str | Path, actions: list[str],
                         num_frames: int = 8) -> ActionPrediction:
        """The action of the video: by the VLM when a client is given, else the classifier."""
        actions = _actions(actions)
        if self.client is None and self.classifier is None:
            raise RuntimeError("VideoAnalyzer needs a classifier or a client to recognize "
                               "actions")
        frames, _ = self.extract_frames(video_path, num_frames)
        if self.client is not None:
            messages = self.build_vlm_messages(frames, actions)
            response = self.client.chat.completions.create(model=self.model, messages=messages,
                                                           max_tokens=MAX_TOKENS)
            label = self.parse_action_response(response.choices[0].message.content, actions)
            return ActionPrediction(label, {a: float(a == label) for a in actions})
        params = list(self.classifier.parameters())
        device = params[0].device if params else torch.device("cpu")
        clip = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            logits = self.classifier(clip.unsqueeze(0))  # [1, T, 3, H, W] -> [1, A]
        if logits.shape != (1, len(actions)):
            raise ValueError(f"the classifier gives logits of shape {list(logits.shape)}, "
                             f"expected [1, {len(actions)}] for {len(actions)} actions")
        probs = torch.softmax(logits[0].double(), dim=0).cpu()
        scores = {a: float(p) for a, p in zip(actions, probs, strict=True)}
        return ActionPrediction(actions[int(probs.argmax())], scores)


class TemporalActionClassifier(nn.Module):
    """Clips [B, T, C, H, W] float in [0, 1] -> logits [B, A], using the order of frames."""

    def __init__(self, num_actions: int, num_frames: int = 8, in_channels: int = 3) -> None:
        super().__init__()
        self.num_actions = _positive_int(num_actions, "num_actions")
        self.num_frames = _positive_int(num_frames, "num_frames")
        self.in_channels = _positive_int(in_channels, "in_channels")
        t, c = self.num_frames, self.in_channels
        # early fusion: the frames and their differences stacked as channels, so the first
        # convolution sees where the shape was at each time (direction of motion)
        self.features = nn.Sequential(
            nn.Conv2d((2 * t - 1) * c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(64, self.num_actions)

    def forward(self, clips: Tensor) -> Tensor:
        if (not isinstance(clips, Tensor) or clips.dim() != 5
                or clips.shape[1] != self.num_frames or clips.shape[2] != self.in_channels):
            got = list(clips.shape) if isinstance(clips, Tensor) else type(clips).__name__
            raise ValueError(f"clips must be [B, {self.num_frames}, {self.in_channels}, H, W], "
                             f"got {got}")
        x = clips.float()
        if min(x.shape[-2:]) >= 32:  # motion of a few pixels survives halving; 4x cheaper
            x = F.avg_pool3d(x.transpose(1, 2), (1, 2, 2)).transpose(1, 2)
        x = x - 0.5
        b, t, c, h, w = x.shape
        diffs = torch.diff(x, dim=1) * 4.0  # [B, T-1, C, H, W]
        stacked = torch.cat([x.reshape(b, t * c, h, w), diffs.reshape(b, (t - 1) * c, h, w)], 1)
        return self.head(self.features(stacked))  # [B, A]


def train_action_classifier(clips: Tensor, labels: Tensor, *, epochs: int, lr: float,
                            generator: torch.Generator | None = None
                            ) -> TemporalActionClassifier:
    """Adam on cross-entropy, mini-batches of 32 shuffled with ``generator``; returns the
    trained model in eval mode. The number of actions is ``labels.max() + 1``."""
    if (not isinstance(clips, Tensor) or clips.dim() != 5 or not clips.is_floating_point()
            or clips.shape[0] < 1):
        raise ValueError("clips must be a float tensor [N, T, C, H, W] with N >= 1")
    if (not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != clips.shape[0]
            or labels.dtype != torch.int64 or int(labels.min()) < 0):
        raise ValueError(f"labels must be an int64 tensor [N] of N = {clips.shape[0]} class "
                         "indices >= 0")
    epochs = _positive_int(epochs, "epochs")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not lr > 0:
        raise ValueError(f"lr must be a number > 0, got {lr!r}")
    n, t, c = clips.shape[:3]
    model = TemporalActionClassifier(int(labels.max()) + 1, t, c).to(clips.device)
    opt = torch.optim.Adam(model.parameters(), lr=float(lr))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(clips.device)
        for idx in order.split(BATCH_SIZE):
            loss = F.cross_entropy(model(clips[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
