"""Assignment `clip_search`: CLIP's loss, zero-shot classification and a semantic image search.

Fill in the functions and the class below (keep their names and signatures: the grader calls
them directly). README.md explains each one; `torchgrade check clip_search` runs the public
checks.

Paper: Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision" (ICML 2021). The course text's CLIP section is the starting point, but its
clip_loss and its use of get_image_features are wrong: see README.md.

The ids in square brackets name the README's rules (the checks name the ones they pin). Bad
arguments raise the errors each docstring lists, ValueError naming the argument
[conv.names-argument]. get_image_features/get_text_features may return a tensor or an
object whose .pooler_output is the embedding: accept both [clip.features].
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

    Both ``[B, D]`` inputs are L2-normalised [loss.normalise]; ``logits = logit_scale * img @
    txt.T`` (``[B, B]``, ``logit_scale`` the multiplier, i.e. ``model.logit_scale.exp()``, a
    number or a 0-dim tensor) [loss.scale]; the loss is the mean of the image-to-text and the
    text-to-image cross-entropies with targets ``arange(B)`` [loss.symmetric], a 0-dim tensor
    that back-propagates to both inputs [loss.scalar].

    Raises:
        ValueError: an input is not a floating ``[B, D]`` tensor with B >= 1 [loss.rank]; the
            two shapes differ [loss.shapes]; ``logit_scale`` is not a finite number > 0
            [loss.scale-positive].
    """
    raise NotImplementedError("clip_loss: CLIP's symmetric contrastive loss")


def zero_shot_weights(model, tokenizer, classnames: Sequence[str],
                      templates: Sequence[str]) -> Tensor:
    """Zero-shot classifier weights ``[C, D]`` by prompt ensembling (CLIP section 3.1.4).

    For each class, tokenize ``template.format(classname)`` for every template with
    ``tokenizer(text=texts, padding=True, return_tensors="pt")`` (``tokenizer`` is a tokenizer
    or a processor, whose first positional parameter is ``images``: pass ``text=``) and embed
    them with ``model.get_text_features(input_ids=..., attention_mask=...)`` [zs.tokenize];
    L2-normalise each embedding, average them per class, and L2-normalise the average
    [zs.ensemble].

    Raises:
        ValueError: ``classnames`` or ``templates`` is empty [zs.empty].
    """
    raise NotImplementedError("zero_shot_weights: the prompt-ensemble class weights")


def zero_shot_predict(model, pixel_values: Tensor, weights: Tensor) -> Tensor:
    """Class probabilities ``[B, C]``: the softmax over classes of
    ``model.logit_scale.exp() * normalise(image_features) @ weights.T`` [zs.predict].

    ``pixel_values`` is ``[B, 3, H, W]`` as the processor gives it; ``weights`` is
    ``zero_shot_weights``'s ``[C, D]``.

    Raises:
        ValueError: ``pixel_values`` is not 4-D or ``weights`` not 2-D [zs.predict-shapes].
    """
    raise NotImplementedError("zero_shot_predict: zero-shot class probabilities")


class CLIPImageSearchEngine:
    """A semantic image search over a folder: CLIP image embeddings, ranked by cosine.

    ``model`` exposes ``get_image_features``/``get_text_features`` (a ``transformers.
    CLIPModel``); ``processor`` is its ``CLIPProcessor``. Images are embedded ``batch_size`` at
    a time on ``device`` (default: the model's) and stored L2-normalised [index.batches]. With
    the shipped small CLIP its recall@5 on held-out captions reaches the reference's
    [quality.recall]; it works with real CLIP weights too [quality.real-clip].

    Raises:
        ValueError: ``batch_size`` is not a positive int [engine.batch-size].
    """

    def __init__(self, model, processor, *, batch_size: int = 32, device=None) -> None:
        raise NotImplementedError("CLIPImageSearchEngine.__init__")

    def build_index(self, image_dir, extensions: Sequence[str] = (".jpg", ".jpeg", ".png"),
                    *, progress: bool = False) -> IndexReport:
        """Index every image under ``image_dir``, replacing any previous index.

        Files are taken recursively in ``sorted(root.rglob("*"))`` order, extensions matched
        case-insensitively, other files ignored silently [index.walk]. Files that cannot be
        decoded are skipped and reported, their paths never indexed [index.skip]. Returns
        ``IndexReport(indexed, skipped)`` with ``str(path)`` of the paths ``rglob`` yields
        [index.report]. ``progress=True`` shows a progress bar (tqdm) on stderr.
        """
        raise NotImplementedError("CLIPImageSearchEngine.build_index")

    def add_images(self, paths: Sequence, *, progress: bool = False) -> IndexReport:
        """Append the images at ``paths`` (in that order) to the index; undecodable files are
        skipped and reported [index.add]."""
        raise NotImplementedError("CLIPImageSearchEngine.add_images")


    def search_by_text(self, query: str, top_k: int = 5) -> list[SearchResult]:
        """The ``top_k`` images most similar to the text ``query``, best first.

        A list of ``SearchResult(rank, path, score)``, ``score`` the cosine, ``rank`` from 1
        [search.results]; ties keep index order [search.ties]; all of the index if it holds
        fewer than ``top_k`` images [search.top-k-large].

        Raises:
            ValueError: ``top_k`` < 1 [search.top-k]; ``query`` is empty [search.query].
            RuntimeError: the index is empty [search.empty-index].
        """
        raise NotImplementedError("CLIPImageSearchEngine.search_by_text")

    def search_by_image(self, image_or_path, top_k: int = 5) -> list[SearchResult]:
        """Like ``search_by_text`` with an image query: a PIL image or a path to one
        [search.results].

        Raises:
            ValueError: ``top_k`` < 1 [search.top-k].
            RuntimeError: the index is empty [search.empty-index].
        """
        raise NotImplementedError("CLIPImageSearchEngine.search_by_image")

    def save_index(self, path) -> None:
        """Write the index to one safetensors file: the embeddings ``[N, D]`` under
        ``"embeddings"``; in the metadata the paths as a JSON list under ``"paths"`` and
        :data:`INDEX_FORMAT` under ``"format"`` [index.file]."""
        raise NotImplementedError("CLIPImageSearchEngine.save_index")

    def load_index(self, path) -> None:
        """Replace the index with the one ``save_index`` wrote at ``path`` [index.load]. Never
        unpickles: anything but a safetensors index file is rejected with an error
        [index.no-pickle]."""
        raise NotImplementedError("CLIPImageSearchEngine.load_index")


def create_app(engine: CLIPImageSearchEngine):
    """The search engine's web UI: a FastAPI app serving its page and JSON API.

    - ``GET /``: ``torchgrade.course.clip_ui.PAGE``, ``text/html`` [app.page];
    - ``GET /api/search?q=&top_k=``: ``{"query", "results": [{"rank", "path", "score",
      "url"}]}`` from ``search_by_text`` [app.search]; an empty query or ``top_k`` < 1 is a
      400 [app.bad-query], a ``top_k`` that is not an integer a 400 or 422 [app.top-k-type],
      an empty index a 409 [app.empty-index];
    - ``POST /api/search_image`` with an uploaded ``file`` and a form field ``top_k``: the
      same shape from ``search_by_image`` [app.search-image]; an upload that is not an image
      is a 400 [app.not-image];
    - ``GET /api/image?path=``: the file, for indexed paths only (404 otherwise), where each
      result's ``url`` points [app.image].

    Run it with ``python -m torchgrade.course.clip_ui clip_search.py``.
    """
    raise NotImplementedError("create_app: the search engine's web UI")
