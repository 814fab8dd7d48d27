"""Drafting a sequence from plain words, and rewriting an email until it scores under 20 (SPEC 17).

Pure: plain values in, plain values out; no database, clock or network. A language model, when
the user asks for one, comes in through the small `Model` interface (seqctl/providers/
language_model.py adapts the `llm` library to it), so the deterministic path needs nothing else.

- `words`: the text is cut into segments (new lines, `/`, `;`, sentence ends, "then"; commas
  and "and" too when both sides name a step). Each segment is a step (email, call, LinkedIn,
  task, wait), or settings (exits, send window, A/B test), or both. A segment it cannot read
  becomes a warning that names it. docs/drafting.md lists every phrase it understands.
- `timing`: day phrases, and "Day N" (counted from enrollment) turned into the relative delays
  of SPEC 5.
- `document`: the sequence mapping and its copy. Only built-in merge variables are used; what
  the words cannot know (the pitch line, a case study) is a `TODO:` line for the rep.
- `model`: the JSON schema of a sequence, the prompt, and reading a model's answer.
- `rewrite`: deterministic fixes, highest points first, until the score is under 20 or no fix
  applies. Merge variables and URLs are never edited; thinning drops whole links and lists each.
"""

from seqctl.engine.draft.document import Draft, draft, dump_yaml, slug
from seqctl.engine.draft.model import (
    REWRITE_SCHEMA,
    SEQUENCE_SCHEMA,
    Model,
    document_from_answer,
    draft_with_model,
    model_prompt,
)
from seqctl.engine.draft.rewrite import (
    PLAIN_WORDS,
    REWRITE_BELOW,
    Change,
    Rewrite,
    merge_variables,
    rewrite,
    urls,
)
from seqctl.engine.draft.words import MAX_TEXT_CHARS, check_words
from seqctl.errors import SeqctlError

__all__ = [
    "MAX_TEXT_CHARS", "PLAIN_WORDS", "REWRITE_BELOW", "REWRITE_SCHEMA", "SEQUENCE_SCHEMA",
    "Change", "Draft", "Model", "Rewrite", "SeqctlError", "check_words", "document_from_answer",
    "draft", "draft_with_model", "dump_yaml", "merge_variables", "model_prompt", "rewrite",
    "slug", "urls",
]
