"""hf_genrec: generative recommendation with semantic IDs, native to the Hugging Face ecosystem."""

__version__ = "0.1.0"
