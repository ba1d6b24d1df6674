"""LLM backends behind the ChatModel protocol: an OpenAI-compatible server, Amazon Bedrock, a local
transformers model. ``groundwork.wiring.build_chat_model`` chooses one by ``generator.backend`` and
imports its library only then."""
