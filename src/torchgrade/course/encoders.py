"""Small image encoders for the CPU training checks.

Why it exists: the SimCLR check (and any later check that needs "an encoder") trains the same
network for the reference and for every submission, so that the probe accuracies compare the
students' losses and training loops, not their architectures. The encoder must learn in a
couple of hundred optimiser steps on one CPU thread, which shaped four choices (each measured
by ``benchmarks/nt_xent_calibration.py``):

- no BatchNorm: the network behaves the same in train and eval mode and for a batch of one,
  and a contrastive loss cannot cheat through batch statistics;
- GroupNorm after every convolution instead (per sample, so the same in train and eval):
  without any normalisation the default-initialised network sits on a plateau for hundreds of
  steps;
- each image is standardised per channel on the way in (mean 0, unit spread), which removes
  global brightness and contrast, nuisances that colour jitter changes anyway;
- convolutions pad by replicating the border pixels: zero padding draws an artificial edge
  around every image whose strength gives away the background colour, a shortcut that lets
  SimCLR tell images apart without looking at the shape (replicate padding roughly doubled
  the probe's margin over a random encoder in the calibration).

Only torch is imported, since the student worker imports this module too.
"""

from __future__ import annotations

from torch import Tensor, nn

INPUT_EPS = 0.05  # floor on the per-image spread, so a flat channel is not blown up to noise


def _groups(channels: int) -> int:
    return 4 if channels % 4 == 0 else 1


class SmallConvEncoder(nn.Module):
    """Four 3x3 convolutions (GroupNorm + ReLU), global average pooling, a linear layer.

    Maps ``[B, in_channels, H, W]`` (any ``H, W``; 16-32 pixels is the intended range) to
    features ``[B, out_dim]``. Three stride-2 stages bring a 20x20 image to 3x3 before pooling.
    Each image is processed independently of the rest of the batch.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, out_dim: int = 64) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("width", width), ("out_dim", out_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.out_dim = out_dim
        layers: list[nn.Module] = []
        channels = in_channels
        for out_channels, stride in ((width, 1), (width, 2), (2 * width, 2), (2 * width, 2)):
            layers += [
                nn.Conv2d(
                    channels, out_channels, 3, stride=stride, padding=1, padding_mode="replicate"
                ),
                nn.GroupNorm(_groups(out_channels), out_channels),
                nn.ReLU(),
            ]
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        mean = x.mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
        spread = x.std(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
        x = (x - mean) / (spread + INPUT_EPS)
        h = self.features(x)  # [B, 2*width, H/8, W/8]
        return self.fc(h.mean(dim=(2, 3)))  # [B, 2*width] -> [B, out_dim]
