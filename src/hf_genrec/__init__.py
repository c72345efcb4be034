"""hf_genrec: generative recommendation with semantic IDs, native to the Hugging Face ecosystem.

Importing the package registers every model family (config, model, tokenizer, processor) and the
RQ-VAE item tokenizer with the transformers Auto classes, so ``AutoModel.from_pretrained(dir)``,
``AutoTokenizer.from_pretrained(dir)`` and ``AutoProcessor.from_pretrained(dir)`` return hf_genrec
classes, and ``model.push_to_hub`` of those models publishes like ``hf-genrec push``.  Registration
is the only thing an import does.
"""

__version__ = "0.1.0"

from . import models  # noqa: E402,F401  (registers the model families)
from .data import load_rec_dataset  # noqa: E402
from .generation import recommend, recommend_by_key  # noqa: E402
from .hub import model_publishing  # noqa: E402
from .item_tokenizers import rqvae  # noqa: E402,F401  (registers the RQ-VAE item tokenizer)
from .semantic_ids import SemanticIdTable  # noqa: E402

model_publishing.register()  # model.push_to_hub publishes like `hf-genrec push` (same card, no pickle, no local path)

__all__ = ["SemanticIdTable", "load_rec_dataset", "recommend", "recommend_by_key", "__version__"]
