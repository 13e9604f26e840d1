"""The live side of diffprompt: serve the pinned prompt to a running agent and record its episodes.

* ``PromptAdaptationMiddleware`` — a LangChain v1 ``AgentMiddleware`` for ``create_agent``;
  ``FinalAnswerPromptAdaptationMiddleware`` is the same without the ``after_agent`` graph node.
* ``wrap_graph`` — the same for any compiled LangGraph graph (prompt via config/context, recording
  via callbacks).
* ``record_feedback`` / ``normalize_rating`` — rewards, ratings, judge scores and comments.
* ``TraceLimits`` — the size caps of one recorded trace (messages, characters).

Importing this package starts nothing: no threads, no connections.
"""

from __future__ import annotations

from diffprompt.middleware._limits import TraceLimits
from diffprompt.middleware.agent import (
    DiffpromptState,
    FinalAnswerPromptAdaptationMiddleware,
    PromptAdaptationMiddleware,
)
from diffprompt.middleware.feedback import normalize_rating, record_feedback
from diffprompt.middleware.graph import GraphWrapper, wrap_graph
from diffprompt.middleware.prompts import Pin, PromptView

__all__ = [
    "DiffpromptState",
    "FinalAnswerPromptAdaptationMiddleware",
    "GraphWrapper",
    "Pin",
    "PromptAdaptationMiddleware",
    "PromptView",
    "TraceLimits",
    "normalize_rating",
    "record_feedback",
    "wrap_graph",
]
