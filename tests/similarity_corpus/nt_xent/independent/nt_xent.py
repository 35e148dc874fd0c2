"""`nt_xent`, written independently of the reference from the stub and the handout.

An honest solution for the similarity tests: NT-Xent loss, projection head, views, training.

Fill in the four pieces below (read ``README.md`` beside this file first). Keep the names and
signatures exactly as they are: the grader calls them directly and compares them with a hidden
reference value for value (the loss, the head) and by invariants and a training check (the
views, the training loop). Check your work with ``torchgrade check nt_xent``.

Paper: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations" (ICML 2020).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _finite_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_embeddings(z: object, name: str) -> None:
    if not isinstance(z, Tensor) or z.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor [N, D]")
    if not torch.is_floating_point(z):
        raise ValueError(f"{name} must have a floating dtype, got {z.dtype}")


def _uniform(shape: tuple[int, ...], low: float, high: float, generator, device) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device)


def _augment(images: Tensor, generator: torch.Generator | None) -> Tensor:
    """One random view of every image: crop + flip, colour jitter, grayscale."""
    b = images.shape[0]
    dev = images.device
    gen_dev = generator.device if generator is not None else dev
    draw = lambda low, high: _uniform((b,), low, high, generator, gen_dev).to(dev)  # noqa: E731
    area = draw(0.5, 1.0)
    log_ratio = draw(math.log(3 / 4), math.log(4 / 3))
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1.0)
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    shift_x = draw(-1.0, 1.0) * (1 - width)
    shift_y = draw(-1.0, 1.0) * (1 - height)
    flip = torch.where(draw(0.0, 1.0) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=images.dtype)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = shift_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = shift_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                        align_corners=False)

    jitter = (draw(0.0, 1.0) < 0.8).to(images.dtype).view(b, 1, 1, 1)
    bright = draw(0.6, 1.4).view(b, 1, 1, 1).to(images.dtype)
    contrast = draw(0.6, 1.4).view(b, 1, 1, 1).to(images.dtype)
    saturation = draw(0.6, 1.4).view(b, 1, 1, 1).to(images.dtype)
    jittered = (out * bright).clamp(0, 1)
    mean = jittered.mean(dim=(1, 2, 3), keepdim=True)
    jittered = ((jittered - mean) * contrast + mean).clamp(0, 1)
    if images.shape[1] == 3:
        luma = (0.299 * jittered[:, 0] + 0.587 * jittered[:, 1] + 0.114 * jittered[:, 2])
        luma = luma.unsqueeze(1)
        jittered = ((jittered - luma) * saturation + luma).clamp(0, 1)
    out = jitter * jittered + (1 - jitter) * out

    if images.shape[1] == 3:
        gray = (0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]).unsqueeze(1)
        to_gray = (draw(0.0, 1.0) < 0.2).to(images.dtype).view(b, 1, 1, 1)
        out = to_gray * gray.expand_as(out) + (1 - to_gray) * out
    return out.clamp(0.0, 1.0)


def nt_xent_loss(z_i: Tensor, z_j: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent (normalised temperature-scaled cross-entropy), averaged over all 2N anchors.

    ``z_i[k]`` and ``z_j[k]`` are the projections of two views of image ``k``; both are
    ``[N, D]``. Stack them into 2N rows ``z = cat(z_i, z_j)``; every row is an anchor. For
    anchor ``a``:

    - its positive ``p(a)`` is the other view of the same image (row ``a + N`` or ``a - N``);
    - the other 2N - 2 rows are its negatives;
    - the anchor itself is NOT in the denominator, and the positive is in it exactly once:

        loss = mean_a  -log( exp(s[a, p(a)] / t) / sum_{k != a} exp(s[a, k] / t) )

    where ``s`` is the cosine similarity. (The course text's version counts the positive twice:
    do not copy it.)

    Conventions:
    - Return a 0-dim tensor on the inputs' device that back-propagates to ``z_i`` and ``z_j``.
    - Normalise rows with a small eps (as ``F.normalize`` does) so a zero row gives
      similarity 0, not NaN.
    - float16/bfloat16 inputs: compute in float32 and return a float32 loss. float32 and
      float64 stay as they are. No ``-9e15`` fills (that is ``-inf`` in float16): mask with
      ``-inf`` in float32 (or gather) and use ``torch.logsumexp`` / ``F.cross_entropy``.
    - It must stay finite, with finite gradients, at temperature 0.05, for rows of norm 1e4
      and for half-precision inputs.
    - N = 1 is legal: with no negatives the loss is exactly 0 (= log(2N - 1)).

    Raises:
        ValueError (with a message naming the argument) if ``z_i`` or ``z_j`` is not a 2-D
        tensor of a floating dtype, if their shapes differ, if the batch is empty (N < 1) or if
        ``temperature`` is not a finite number > 0.
    """
    _check_embeddings(z_i, "z_i")
    _check_embeddings(z_j, "z_j")
    if z_i.shape != z_j.shape:
        raise ValueError(f"z_i and z_j must have one shape, got {list(z_i.shape)} vs "
                         f"{list(z_j.shape)}")
    if z_i.shape[0] < 1:
        raise ValueError("z_i / z_j: the batch is empty (N must be >= 1)")
    tau = _finite_positive(temperature, "temperature")
    work_dtype = torch.promote_types(z_i.dtype, z_j.dtype)
    if work_dtype in (torch.float16, torch.bfloat16):
        work_dtype = torch.float32
    both = torch.cat((z_i, z_j), dim=0).to(work_dtype)
    unit = both / both.norm(dim=1, keepdim=True).clamp_min(1e-12)
    scores = unit @ unit.t() / tau
    count = both.shape[0]
    half = count // 2
    eye = torch.eye(count, device=scores.device, dtype=torch.bool)
    scores = scores.masked_fill(eye, float("-inf"))
    partner = (torch.arange(count, device=scores.device) + half) % count
    per_anchor = torch.logsumexp(scores, dim=1) - scores[torch.arange(count), partner]
    return per_anchor.mean()


class ProjectionHead(nn.Module):
    """SimCLR's projection head g(h): Linear(in_dim, hidden_dim) - ReLU - Linear(hidden_dim,
    out_dim).

    Keep the three layers in ``self.net = nn.Sequential(...)`` in that order, so the parameter
    names are ``net.0.weight``, ``net.0.bias``, ``net.2.weight``, ``net.2.bias`` (the grader
    loads the reference's weights into your head). ``forward(h [B, in_dim]) -> [B, out_dim]``.

    Raises:
        ValueError naming the argument if ``in_dim``, ``hidden_dim`` or ``out_dim`` is not a
        positive int.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> None:
        super().__init__()
        for value, label in ((in_dim, "in_dim"), (hidden_dim, "hidden_dim"),
                             (out_dim, "out_dim")):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{label} must be a positive int, got {value!r}")
        layers = [nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


def simclr_views(images: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two independently augmented views of every image, SimCLR-style.

    ``images`` is ``[B, C, H, W]`` with values in ``[0, 1]``. Apply to each image, twice and
    independently, with plain torch operations:

    - a random resized crop resized back to ``H x W``, keeping 50-100 % of the area with an
      aspect ratio from 3/4 to 4/3 (``F.affine_grid`` + ``F.grid_sample`` do a whole batch at
      once; the training check's images are 16x16, and smaller crops often cut the shape off),
    - a random horizontal flip (probability 0.5),
    - colour jitter (brightness, contrast, saturation, maybe hue) with probability 0.8,
    - random grayscale (probability 0.2).

    The colour steps are not optional: without them the network tells the views apart by
    colour alone and learns nothing about shape (the training check then fails).

    Conventions:
    - Both views have the input's shape, dtype and device, and values in ``[0, 1]``.
    - Draw ALL randomness from ``generator`` (``torch.rand(..., generator=generator)`` and
      friends), so that the same seeded generator gives the same views. Never touch the
      global RNG when a generator is given.
    - The two views of an image differ from each other.

    Raises:
        ValueError naming ``images`` if it is not a 4-D floating tensor.
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError("images must be a 4-D floating tensor [B, C, H, W]")
    first = _augment(images, generator)
    second = _augment(images, generator)
    return first, second


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
       ``nt_xent_loss(head(encoder(view_1)), head(encoder(view_2)), temperature)``.
    4. Drop the head and return the trained encoder (the same object you were given).

    Conventions:
    - Deterministic: with a seeded ``generator`` (and ``torch.manual_seed`` set by the caller
      before anything is initialised) two runs give the same weights.
    - The grader runs this on CPU with a small encoder and a time limit: no per-step prints,
      no needless copies.

    Raises:
        ValueError naming the argument if ``epochs`` is not an int >= 1, ``batch_size`` is not
        an int >= 2, or ``lr`` or ``temperature`` is not a finite number > 0.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an int >= 2, got {batch_size!r}")
    rate = _finite_positive(lr, "lr")
    tau = _finite_positive(temperature, "temperature")
    with torch.no_grad():
        feature_dim = encoder(images[:1]).shape[-1]
    head = ProjectionHead(feature_dim).to(images.device)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=rate)
    total = images.shape[0]
    for _epoch in range(epochs):
        shuffled = torch.randperm(total, generator=generator)
        for begin in range(0, total, batch_size):
            picked = shuffled[begin:begin + batch_size].to(images.device)
            if picked.numel() < 2:
                continue  # one image has no negatives
            batch = images[picked]
            one, two = simclr_views(batch, generator=generator)
            loss = nt_xent_loss(head(encoder(one)), head(encoder(two)), tau)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return encoder
