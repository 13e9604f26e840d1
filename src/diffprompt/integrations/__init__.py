"""Integrations: the only places where diffprompt's core meets an outside environment package.

``diffprompt.integrations.tau`` is the τ-bench glue (replay, scenarios, the demo's world set-up, the
τ parts of ``optimize.build``, the oracle judge). The core (``store``, ``middleware``, ``dlm``,
``spans``, ``types``, ``llm``, the round and the gate) never imports an integration;
``tests/core/test_import_graph.py`` checks it.
"""
