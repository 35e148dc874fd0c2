"""Assignment `nt_xent`: SimCLR's NT-Xent loss, projection head, views and training loop.

Fill in the four pieces below (read ``README.md`` beside this file first). Keep the names and
signatures exactly as they are: the grader calls them directly and compares them with a hidden
reference value for value (the loss, the head) and by invariants and a training check (the
views, the training loop). Check your work with ``torchgrade check nt_xent``.

The ids in square brackets name the README's rules (the checks name the ones they pin). Bad
arguments raise ValueError naming the argument [conv.names-argument]; randomness comes only
from the ``generator`` argument [conv.generator].

Paper: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations" (ICML 2020).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def nt_xent_loss(z_i: Tensor, z_j: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (normalised temperature-scaled cross-entropy), averaged over all 2N anchors.

    ``z_i[k]`` and ``z_j[k]`` are the projections of two views of image ``k``; both are
    ``[N, D]``. Stack them into 2N rows ``z = cat(z_i, z_j)``; every row is an anchor. For
    anchor ``a``:

    - its positive ``p(a)`` is the other view of the same image (row ``a + N`` or ``a - N``);
    - the other 2N - 2 rows are its negatives;
    - the anchor itself is NOT in the denominator, and the positive is in it exactly once:

        loss = mean_a  -log( exp(s[a, p(a)] / t) / sum_{k != a} exp(s[a, k] / t) )

    where ``s`` is the cosine similarity [loss.formula]. (The course text's version counts the
    positive twice: do not copy it.) All 2N embeddings equal give log(2N - 1)
    [loss.all-equal].

    Conventions:
    - Return a 0-dim tensor on the inputs' device that back-propagates to ``z_i`` and ``z_j``
      [loss.scalar]; leave the inputs unchanged [conv.no-inplace].
    - Normalise rows with a small eps (as ``F.normalize`` does) so a zero row gives
      similarity 0, not NaN [loss.cosine].
    - float16/bfloat16 inputs: compute in float32 and return a float32 loss. float32 and
      float64 stay as they are [loss.dtype].
    - No ``-9e15`` fills (that is ``-inf`` in float16): mask with ``-inf`` in float32 (or
      gather) and use ``torch.logsumexp`` / ``F.cross_entropy``; the loss and its gradients
      must stay finite at temperature 0.05, for rows of norm 1e4 and for half-precision
      inputs [loss.stable].
    - N = 1 is legal: with no negatives the loss is exactly 0 (= log(2N - 1)) [loss.n-one].

    Raises:
        ValueError: ``z_i`` or ``z_j`` is not a 2-D tensor of a floating dtype [loss.rank];
            their shapes differ [loss.shapes]; the batch is empty, N < 1 [loss.empty];
            ``temperature`` is not a finite number > 0 [loss.temperature].
    """
    raise NotImplementedError("nt_xent_loss: compute SimCLR's NT-Xent loss (see the docstring)")


class ProjectionHead(nn.Module):
    """SimCLR's projection head g(h): Linear(in_dim, hidden_dim) - ReLU - Linear(hidden_dim,
    out_dim).

    Keep the three layers in ``self.net = nn.Sequential(...)`` in that order, so the parameter
    names are ``net.0.weight``, ``net.0.bias``, ``net.2.weight``, ``net.2.bias`` (the grader
    loads the reference's weights into your head) [head.layout].
    ``forward(h [B, in_dim]) -> [B, out_dim]``.

    Raises:
        ValueError: ``in_dim``, ``hidden_dim`` or ``out_dim`` is not a positive int
            [head.dims].
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        raise NotImplementedError("ProjectionHead.__init__: build self.net (Linear-ReLU-Linear)")

    def forward(self, h: Tensor) -> Tensor:
        raise NotImplementedError("ProjectionHead.forward: apply self.net")


def simclr_views(images: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two independently augmented views of every image, SimCLR-style.

    ``images`` is ``[B, C, H, W]`` with values in ``[0, 1]``. Apply to each image, twice and
    independently, with plain torch operations [views.recipe]:

    - a random resized crop resized back to ``H x W``, keeping 50-100 % of the area with an
      aspect ratio from 3/4 to 4/3 (``F.affine_grid`` + ``F.grid_sample`` do a whole batch at
      once; the training check's images are 16x16, and smaller crops often cut the shape off),
    - a random horizontal flip (probability 0.5),
    - colour jitter (brightness, contrast, saturation, maybe hue) with probability 0.8,
    - random grayscale (probability 0.2).

    The colour steps are not optional: without them the network tells the views apart by
    colour alone and learns nothing about shape (the training check then fails).

    Conventions:
    - Both views have the input's shape, dtype and device, and values in ``[0, 1]``; the two
      views of an image differ from each other [views.invariants].
    - Draw ALL randomness from ``generator`` (``torch.rand(..., generator=generator)`` and
      friends), so that the same seeded generator gives the same views. Never touch the
      global RNG when a generator is given [conv.generator].

    Raises:
        ValueError: ``images`` is not a 4-D floating tensor [views.images].
    """
    raise NotImplementedError("simclr_views: return two augmented views (see the docstring)")


def train_simclr(
    encoder: nn.Module,
    images: Tensor,
    *,
    epochs: int,
    batch_size: int,
    temperature: float,
    lr: float,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Train ``encoder`` with SimCLR on the unlabelled ``images`` and return it.

    ``encoder`` maps ``[B, C, H, W]`` to features ``[B, F]``. Steps:

    1. Find ``F`` with one forward pass (e.g. on ``images[:1]``, under ``torch.no_grad()``),
       then build your own ``ProjectionHead(F)`` on the images' device.
    2. Optimise the encoder's and the head's parameters together with
       ``torch.optim.Adam(..., lr=lr)``.
    3. Every epoch, shuffle with ``torch.randperm(n, generator=generator)`` and go through the
       images in mini-batches of ``batch_size``; for each mini-batch make two views with
       ``simclr_views(batch, generator=generator)`` and minimise
       ``nt_xent_loss(head(encoder(view_1)), head(encoder(view_2)), temperature)``
       [train.loop].
    4. Drop the head and return the trained encoder (the same object you were given)
       [train.returns].

    Conventions:
    - Deterministic: with a seeded ``generator`` (and ``torch.manual_seed`` set by the caller
      before anything is initialised) two runs give the same weights [conv.generator].
    - The grader runs this on CPU with a small encoder and a CPU budget: no per-step prints,
      no needless copies. A linear probe on the trained encoder beats the baselines
      [train.probe].

    Raises:
        ValueError: ``epochs`` is not an int >= 1 [train.epochs]; ``batch_size`` is not an
            int >= 2 [train.batch-size]; ``lr`` or ``temperature`` is not a finite number > 0
            [train.lr].
    """
    raise NotImplementedError("train_simclr: train encoder + projection head with NT-Xent")
