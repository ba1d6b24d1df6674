"""Adapt stage: fine-tune only where evaluation shows retrieval is not enough (embedding domain
adaptation, LoRA adapters for a local generator) and the measured decision between them."""
