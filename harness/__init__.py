"""tts-eval: accuracy against average output tokens per problem, for reasoning models.

Importing this package stays light: torch, transformers, vllm and ray are imported inside the backends.
"""

__version__ = "0.1.0"
