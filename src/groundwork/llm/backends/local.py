"""A local causal LM from a folder (transformers ``AutoModelForCausalLM``), CPU or CUDA, with an
optional PEFT LoRA adapter. Streaming uses ``TextIteratorStreamer`` with generation on a thread."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from threading import Thread
from typing import Any

from groundwork.config import GeneratorSettings
from groundwork.errors import ConfigError, GeneratorError
from groundwork.llm.chat import Message
from groundwork.llm.usage import report_usage


class TransformersChat:
    """Greedy decoding when ``temperature`` is 0, sampling otherwise. Prompts go through the
    tokenizer's chat template when it has one, else a plain ``role: content`` transcript."""

    def __init__(self, settings: GeneratorSettings) -> None:
        if settings.model_path is None or not settings.model_path.is_dir():
            raise ConfigError(
                f"generator.model_path must be a model folder for the transformers backend (got {settings.model_path})"
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.settings = settings
        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(settings.model_path))
            model: Any = AutoModelForCausalLM.from_pretrained(str(settings.model_path))
            if settings.adapter_path is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(settings.adapter_path))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"could not load the model from {settings.model_path}: {exc}") from None
        self.model = model.to(settings.device).eval()
        name = settings.model_path.name + (f"+{settings.adapter_path.name}" if settings.adapter_path else "")
        self.model_id = f"transformers:{name}"
        limit = getattr(self.model.config, "max_position_embeddings", None) or settings.context_window
        self.context_window = min(settings.context_window, int(limit))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _inputs(self, messages: Sequence[Message]) -> dict[str, Any]:
        if getattr(self.tokenizer, "chat_template", None):
            prompt = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        else:
            prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"
        enc = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        # Only what the model's forward pass takes: some tokenizers add token_type_ids, which a causal
        # LM refuses ("model_kwargs are not used by the model").
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model  # PEFT
        params = inspect.signature(base.forward).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        return {k: v.to(self.settings.device) for k, v in enc.items() if takes_any or k in params}

    def _gen_args(self, max_tokens: int | None) -> dict[str, Any]:
        args: dict[str, Any] = {"max_new_tokens": max_tokens or self.settings.max_tokens}
        if self.settings.temperature > 0:
            args.update(do_sample=True, temperature=self.settings.temperature)
        else:
            args.update(do_sample=False)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        if pad is not None:
            args["pad_token_id"] = pad
        return args

    def complete(self, messages: Sequence[Message], max_tokens: int | None = None) -> str:
        inputs = self._inputs(messages)
        try:
            with self._torch.no_grad():
                out = self.model.generate(**inputs, **self._gen_args(max_tokens))
        except RuntimeError as exc:  # out of memory, device errors
            raise GeneratorError("transformers", str(exc)) from exc
        prompt_len = inputs["input_ids"].shape[1]
        report_usage(prompt_len, out.shape[1] - prompt_len)  # counted with the model's own tokenizer
        return self.tokenizer.decode(out[0, prompt_len:], skip_special_tokens=True)

    def stream(self, messages: Sequence[Message], max_tokens: int | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._inputs(messages)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=self.settings.timeout_s
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._torch.no_grad():
                    self.model.generate(**inputs, **self._gen_args(max_tokens), streamer=streamer)
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        thread = Thread(target=run, daemon=True)
        thread.start()
        pieces: list[str] = []
        try:
            for piece in streamer:
                if piece:
                    pieces.append(piece)
                    yield piece
        except Exception as exc:  # queue.Empty on timeout
            raise GeneratorError("transformers", f"no token within {self.settings.timeout_s} s ({exc!r})") from exc
        thread.join()
        if errors:
            raise GeneratorError("transformers", str(errors[0])) from errors[0]
        report_usage(inputs["input_ids"].shape[1], self.count_tokens("".join(pieces)))
