"""hf_genrec: generative recommendation with semantic IDs, native to the Hugging Face ecosystem.

Importing the package registers every config, model and tokenizer with the transformers Auto
classes, so `AutoModelForSeq2SeqLM.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`
return hf_genrec classes.
"""

import os

# Idle OpenMP threads sleep instead of spinning: on a few shared cores, spinning threads of one
# process starve the others (an RQ-VAE step went from 0.14 s to 2 s). Must precede importing torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def register_auto_classes() -> None:
    """Register hf_genrec's configs, models and tokenizers with the Auto classes (idempotent)."""
    from .models.colarec import register_colarec_auto_classes
    from .models.genrec_tokenizer import register_genrec_tokenizer
    from .models.rqvae import register_rqvae_auto_classes
    from .models.tiger import register_tiger_auto_classes

    register_rqvae_auto_classes()
    register_tiger_auto_classes()
    register_genrec_tokenizer()
    register_colarec_auto_classes()
    _register_colarec_tokenizer()


def _register_colarec_tokenizer() -> None:
    """ColaRec checkpoints use the same GenRecTokenizer (item text vocabulary + placeholder tokens)."""
    from transformers import AutoTokenizer

    from .models.colarec import ColaRecConfig
    from .models.genrec_tokenizer import GenRecTokenizer

    AutoTokenizer.register(ColaRecConfig, tokenizer_class=GenRecTokenizer, exist_ok=True)


register_auto_classes()

from .data import load_rec_dataset  # noqa: E402
from .generation import recommend  # noqa: E402
from .semantic_ids import SemanticIdTable  # noqa: E402

__all__ = ["SemanticIdTable", "load_rec_dataset", "recommend", "register_auto_classes", "__version__"]
