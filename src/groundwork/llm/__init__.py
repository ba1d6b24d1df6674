"""The LLM seam: the ChatModel protocol, its backends (OpenAI-compatible, Bedrock, local transformers)
and versioned prompt templates. Used by answer generation, reranking, decomposition, follow-up
rewriting, the LLM judge and LoRA training; it imports no pipeline stage."""

from groundwork.llm.chat import ChatModel, Message, ToolCall, ToolChatModel, ToolReply, estimate_tokens
from groundwork.llm.prompts import PromptTemplate, load_prompt

__all__ = [
    "ChatModel",
    "Message",
    "PromptTemplate",
    "ToolCall",
    "ToolChatModel",
    "ToolReply",
    "estimate_tokens",
    "load_prompt",
]
