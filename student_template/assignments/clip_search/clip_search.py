"""Assignment `clip_search`: CLIP's loss, zero-shot classification and a semantic image search.

Fill in the functions and the class below (keep their names and signatures: the grader calls
them directly). README.md explains each one; `torchgrade check clip_search` runs the public
checks.

Paper: Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision" (ICML 2021). The course text's CLIP section is the starting point, but its
clip_loss and its use of get_image_features are wrong: see README.md.
"""
# No `from __future__ import annotations` here: FastAPI reads create_app's endpoint annotations
# at run time, and they name classes imported inside create_app.

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

INDEX_FORMAT = "clip_search-index-v1"  # written into a saved index's metadata


@dataclass(frozen=True)
class SearchResult:
    """One hit: ``rank`` 1-based, ``path`` the image file, ``score`` the cosine similarity."""

    rank: int
    path: str
    score: float


@dataclass(frozen=True)
class IndexReport:
    """What an indexing call did: the paths it indexed (in index order) and the ones it
    skipped, each with the reason (``path -> reason``)."""

    indexed: list[str]
    skipped: dict[str, str]


def clip_loss(image_embeds: Tensor, text_embeds: Tensor, logit_scale: float | Tensor) -> Tensor:
    """CLIP's symmetric InfoNCE loss over a batch of ``B`` matching (image, text) pairs.

    Both ``[B, D]`` inputs are L2-normalised; ``logits = logit_scale * img @ txt.T`` (``[B, B]``,
    ``logit_scale`` the multiplier, i.e. ``model.logit_scale.exp()``); the loss is the mean of
    the image-to-text and the text-to-image cross-entropies with targets ``arange(B)``.
    ValueError (naming the argument) for non-2-D or mismatched inputs or ``logit_scale <= 0``.
    """
    raise NotImplementedError("clip_loss: CLIP's symmetric contrastive loss")


def zero_shot_weights(model, tokenizer, classnames: Sequence[str],
                      templates: Sequence[str]) -> Tensor:
    """Zero-shot classifier weights ``[C, D]`` by prompt ensembling (CLIP section 3.1.4).

    For each class, embed ``template.format(classname)`` for every template with
    ``model.get_text_features`` (a tensor, or an output object whose ``.pooler_output`` is the
    embedding), L2-normalise each embedding, average them, and L2-normalise the average.
    ``tokenizer`` is a tokenizer or a processor: ``tokenizer(texts, padding=True,
    return_tensors="pt")``. ValueError for empty ``classnames`` or ``templates``.
    """
    raise NotImplementedError("zero_shot_weights: the prompt-ensemble class weights")


def zero_shot_predict(model, pixel_values: Tensor, weights: Tensor) -> Tensor:
    """Class probabilities ``[B, C]``: the softmax over classes of
    ``model.logit_scale.exp() * normalise(image_features) @ weights.T``.

    ``pixel_values`` is ``[B, 3, H, W]`` as the processor gives it; ``weights`` is
    ``zero_shot_weights``'s ``[C, D]``. ValueError for a wrong rank or a width mismatch.
    """
    raise NotImplementedError("zero_shot_predict: zero-shot class probabilities")


class CLIPImageSearchEngine:
    """A semantic image search over a folder: CLIP image embeddings, ranked by cosine.

    ``model`` exposes ``get_image_features``/``get_text_features`` (a ``transformers.
    CLIPModel``); ``processor`` is its ``CLIPProcessor``. Images are embedded ``batch_size`` at
    a time on ``device`` (default: the model's) and stored L2-normalised.
    """

    def __init__(self, model, processor, *, batch_size: int = 32, device=None) -> None:
        raise NotImplementedError("CLIPImageSearchEngine.__init__")

    def build_index(self, image_dir, extensions: Sequence[str] = (".jpg", ".jpeg", ".png"),
                    *, progress: bool = False) -> IndexReport:
        """Index every image under ``image_dir`` (recursively, in ``sorted(root.rglob("*"))``
        order, extensions matched case-insensitively, other files ignored silently), replacing
        any previous index. Files that cannot be decoded are skipped and reported.
        ``progress=True`` shows a progress bar (tqdm) on stderr."""
        raise NotImplementedError("CLIPImageSearchEngine.build_index")

    def add_images(self, paths: Sequence, *, progress: bool = False) -> IndexReport:
        """Append the images at ``paths`` (in that order) to the index; undecodable files are
        skipped and reported."""
        raise NotImplementedError("CLIPImageSearchEngine.add_images")


    def search_by_text(self, query: str, top_k: int = 5) -> list[SearchResult]:
        """The ``top_k`` images most similar to the text ``query`` (all of them if the index is
        smaller), best first; ties keep index order. RuntimeError on an empty index."""
        raise NotImplementedError("CLIPImageSearchEngine.search_by_text")

    def search_by_image(self, image_or_path, top_k: int = 5) -> list[SearchResult]:
        """Like ``search_by_text`` with an image query: a PIL image or a path to one."""
        raise NotImplementedError("CLIPImageSearchEngine.search_by_image")

    def save_index(self, path) -> None:
        """Write the index to one safetensors file: the embeddings ``[N, D]`` under
        ``"embeddings"``, the paths as a JSON list in the metadata under ``"paths"``."""
        raise NotImplementedError("CLIPImageSearchEngine.save_index")

    def load_index(self, path) -> None:
        """Replace the index with the one ``save_index`` wrote at ``path``. Never unpickles:
        anything but a safetensors index file raises an error."""
        raise NotImplementedError("CLIPImageSearchEngine.load_index")


def create_app(engine: CLIPImageSearchEngine):
    """The search engine's web UI: a FastAPI app serving ``torchgrade.course.clip_ui.PAGE``
    at ``/`` and its JSON API (``GET /api/search?q=&top_k=``, ``POST /api/search_image`` with
    an uploaded ``file``, ``GET /api/image?path=``), as ``clip_ui``'s docstring describes.
    Run it with ``python -m torchgrade.course.clip_ui clip_search.py``."""
    raise NotImplementedError("create_app: the search engine's web UI")
