"""Answer stage: context assembly within a token budget, and generators that answer with citations."""

from groundwork.answer.context import ContextChunk, assemble_context
from groundwork.answer.extractive import ABSTAIN_MESSAGE, ExtractiveGenerator
from groundwork.answer.generator import Generation, Generator

__all__ = ["ABSTAIN_MESSAGE", "ContextChunk", "ExtractiveGenerator", "Generation", "Generator", "assemble_context"]
