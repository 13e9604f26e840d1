"""The optimization round: attribute weak spans, edit them, replay, gate, promote.

Modules follow the pipeline: ``attribution`` → ``editors`` → ``replay`` → ``gate`` → ``loop``.
Nothing is imported eagerly; import the submodule you need.
"""
