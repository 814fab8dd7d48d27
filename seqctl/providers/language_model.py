"""The optional language model behind `--model` (extra `seqctl[ai]`): simonw's `llm` library.

`load_model(name)` gives an object with the `engine.draft.Model` interface: `answer(prompt,
schema)` returns the model's JSON text. The model and its key are whatever the user configured
for `llm` (`llm models`, `llm keys set`). `llm` is imported only here and only when a model is
asked for, so seqctl starts without it and works without it.
"""

from __future__ import annotations

from typing import Any

from seqctl.errors import SeqctlError

INSTALL_HINT = "pip install 'seqctl[ai]'"


class LlmModel:
    """One `llm` model, asked for structured output (a JSON schema)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.name: str = model.model_id

    def answer(self, prompt: str, schema: dict[str, Any]) -> str:
        try:
            return self._model.prompt(prompt, schema=schema).text()
        except SeqctlError:
            raise
        except Exception as exc:  # any provider or transport failure: one line, not a traceback
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise SeqctlError(f"model {self.name} failed: {detail[:300]}") from None


def load_model(name: str) -> LlmModel:
    """The `llm` model called `name` (or an alias), ready to answer in a JSON schema."""
    try:
        import llm
    except ModuleNotFoundError as exc:
        if exc.name not in ("llm", None) and not str(exc.name).startswith("llm."):
            raise
        raise SeqctlError(f"--model needs the llm library: {INSTALL_HINT}") from None
    try:
        model = llm.get_model(name)
    except llm.UnknownModelError:
        raise SeqctlError(f"unknown model '{name}' (`llm models` lists the installed ones; "
                          "`llm install PLUGIN` adds more)") from None
    if not getattr(model, "supports_schema", False):
        raise SeqctlError(f"model '{name}' cannot answer in a JSON schema (structured output); "
                          "choose one that can (see `llm models --schemas`)")
    return LlmModel(model)
