"""The oracle τ judge: a labelled upper bound, never the default.

``tau_explainer`` turns the simulated target model's own ``explain_failure`` (which rule's absence
drove it) into ``Explanation`` objects for ``ExplainBlamer``. It reads the simulated model's rule book,
so its critiques carry the missing rule's catalogue sentence: use it only by name (``--judge
oracle``), as a ceiling in benchmarks, never as the offline default judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from diffprompt.optimize.attribution import Explanation
from diffprompt.types import PromptVersion, TraceWithFeedback

ORACLE_JUDGE = "oracle"


def tau_explainer(
    tools_info: Sequence[Any], rules: Sequence[Any], *, seed: int = 0, same_rule_at: float = 0.6
) -> Callable[[TraceWithFeedback, PromptVersion], list[Explanation]]:
    """The oracle explainer from the simulated model's ``explain_failure`` (rule ids + reasons).

    The recorded conversation is re-derived under the prompt it was served with (the incumbent's
    text is prepended when the trace has no system message). A rule whose best-covering span is
    really about it (concept coverage >= 0.5 *and* TF-IDF cosine with the rule >= ``same_rule_at``)
    is ``wrong`` there (badly stated); otherwise it is ``missing`` — the blamer then finds a garbled
    copy by letter bags, or the closest neighbour to insert next to. A span that merely shares a few
    concepts (another rule about the same topic) is never overwritten. The hint is the rule's
    catalogue sentence: this offline judge knows the simulated model's rule book.
    """
    from diffprompt.optimize.attribution import tfidf_similarity
    from tau_envs.sim import best_span, explain_failure

    by_id = {r.id: r for r in rules}

    def explain(twf: TraceWithFeedback, prompt: PromptVersion) -> list[Explanation]:
        msgs = [dict(m) for m in twf.trace.messages]
        if not msgs or msgs[0].get("role") != "system":
            msgs.insert(0, {"role": "system", "content": prompt.text})
        out = []
        for rid, reason in explain_failure(msgs, tools_info, seed=seed):
            rule = by_id.get(rid)
            if rule is None:
                continue
            score, span_text = best_span(rule, prompt.text)
            wrong = (
                score >= 0.5 and bool(span_text) and (tfidf_similarity([rule.text], [span_text])[0][0] >= same_rule_at)
            )
            out.append(
                Explanation(
                    text=rule.text,
                    reason=reason,
                    kind="wrong" if wrong else "missing",
                    stated_in=span_text if wrong else "",
                )
            )
        return out

    return explain
