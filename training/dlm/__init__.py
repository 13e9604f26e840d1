"""The built-in DLM's corpus and training recipe (``python -m training.dlm train|eval``).

Never imported by the runtime package: ``diffprompt`` only loads the weights this writes.
"""
