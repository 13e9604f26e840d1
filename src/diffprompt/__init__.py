"""diffprompt: production LLM agents that improve their own system prompts while they serve traffic.

Nothing is loaded, opened or started at import. Public entry points live in their modules:
``diffprompt.middleware`` (serve + record), ``diffprompt.store`` (persistence),
``diffprompt.optimize`` (the round), ``diffprompt.dlm`` (the denoiser), ``diffprompt.scheduler``.
"""

__version__ = "0.1.0"
