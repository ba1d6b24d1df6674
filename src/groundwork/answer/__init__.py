"""Answer stage: context assembly within a token budget, and generators that answer with citations."""

from groundwork.answer.context import assemble_context
from groundwork.answer.extractive import ABSTAIN_MESSAGE, ExtractiveGenerator
from groundwork.answer.generator import Generation, Generator
from groundwork.types import ContextChunk

__all__ = ["ABSTAIN_MESSAGE", "ContextChunk", "ExtractiveGenerator", "Generation", "Generator", "assemble_context"]
