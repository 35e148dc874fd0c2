"""Assignment nt_xent: SimCLR's NT-Xent loss, its projection head, views and training loop.

Fill in the four pieces below. Check your work with

    torchgrade check nt_xent            # this file
    torchgrade check nt_xent my.py      # any file

Conventions (the grader checks all of them):
- Results come back on the input's device; nothing hard-codes "cuda".
- Bad arguments raise ValueError with a message that names the argument.
- Randomness is drawn from the `generator` argument, so a seeded generator reproduces it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def nt_xent_loss(z_i: Tensor, z_j: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020), averaged over all 2N anchors.

    z_i, z_j: [N, D], the projections of two views of the same N images (row k of each is a
    positive pair). Stack them into 2N anchors. For each anchor a, its positive p(a) is its
    other view, the other 2N - 2 rows are negatives, and a itself is NOT in the denominator:

        loss = mean over a of  -log( exp(s[a, p(a)] / t) / sum_{k != a} exp(s[a, k] / t) )

    with s the cosine similarity. (The course text's version counts the positive twice in the
    denominator: do not copy it.)

    Returns a 0-dim tensor that back-propagates to z_i and z_j. Use the log-sum-exp trick so
    that temperature 0.05 and norms of 1e4 stay finite. float16/bfloat16 inputs are computed
    in float32 and the loss is returned as float32. N = 1 is allowed (the loss is 0).

    Raises ValueError naming the argument when z_i or z_j is not 2-D, their shapes differ, the
    batch is empty, or temperature is not a finite number > 0.
    """
    raise NotImplementedError("nt_xent_loss: compute the NT-Xent loss")


class ProjectionHead(nn.Module):
    """SimCLR's projection head: Linear(in_dim, hidden_dim) - ReLU - Linear(hidden_dim, out_dim).

    Keep the layers in `self.net = nn.Sequential(...)` so the parameters are named
    net.0.weight, net.0.bias, net.2.weight, net.2.bias. forward(h [B, in_dim]) -> [B, out_dim].
    Raises ValueError for a dimension that is not a positive int.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        raise NotImplementedError("ProjectionHead: build self.net")

    def forward(self, h: Tensor) -> Tensor:
        raise NotImplementedError("ProjectionHead.forward")


def simclr_views(images: Tensor, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor]:
    """Two independently augmented views of each image in [B, C, H, W] (values in [0, 1]).

    Suggested augmentations: random resized crop, horizontal flip, colour jitter, random
    grayscale, written with torch operations. Draw every random number from `generator`
    (torch.rand(..., generator=generator)), so the same seeded generator gives the same views.
    The views keep the input's shape, dtype and device, stay in [0, 1], and differ from each
    other. Raises ValueError when images is not 4-D.
    """
    raise NotImplementedError("simclr_views: augment the images twice")


def train_simclr(encoder: nn.Module, images: Tensor, *, epochs: int, batch_size: int,
                 temperature: float, lr: float, generator: torch.Generator | None = None
                 ) -> nn.Module:
    """Train `encoder` ([B, C, H, W] -> [B, F]) with SimCLR on unlabelled `images`.

    Infer F with one forward pass, build a ProjectionHead(F), and train encoder and head with
    Adam(lr): each epoch, shuffle with torch.randperm(n, generator=generator), and for each
    mini-batch of `batch_size` images make two views with simclr_views and minimise
    nt_xent_loss(head(encoder(v1)), head(encoder(v2)), temperature). Return the trained
    encoder (drop the head). Raises ValueError for epochs < 1, batch_size < 2, or a
    non-positive lr or temperature.
    """
    raise NotImplementedError("train_simclr: write the training loop")
