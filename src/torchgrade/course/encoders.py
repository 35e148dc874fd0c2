"""Small image encoders for the CPU training checks.

Why it exists: the SimCLR check (and any later check that needs "an encoder") trains the same
network for the reference and for every submission, so that the probe accuracies compare the
students' losses and training loops, not their architectures. The encoder is small enough to
train in seconds on one CPU thread, and has no BatchNorm: it behaves the same in train and eval
mode and for batches of any size (BatchNorm would also leak batch statistics into a contrastive
loss, a well-known shortcut). Only torch is imported, since the student worker imports it too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SmallConvEncoder(nn.Module):
    """A few 3x3 convolutions with ReLU, global average pooling and a linear layer.

    Maps ``[B, in_channels, H, W]`` (any ``H, W >= 8``) to features ``[B, out_dim]``. Three
    stride-2 stages bring a 32x32 image down to 4x4 before pooling, so its receptive field
    covers a whole shape of :func:`torchgrade.course.shapes.make_shapes`.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, out_dim: int = 64) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("width", width), ("out_dim", out_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_dim = out_dim
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Linear(2 * width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must be [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}"
            )
        h = self.features(x)  # [B, 2*width, H/8, W/8]
        h = torch.flatten(h.mean(dim=(2, 3)), 1)  # [B, 2*width]
        return self.fc(h)  # [B, out_dim]
