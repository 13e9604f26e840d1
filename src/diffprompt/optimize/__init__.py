"""The optimization round: split the cases, attribute weak spans, edit them, screen, gate, promote.

Modules follow the pipeline: ``prepare`` (case split, insertion slots) → ``attribution`` →
``search`` (``strategies``, ``editors``/``oracle`` behind ``diffprompt.editing``, ``validate``) →
``replay`` → ``gate`` → ``loop``; ``record``/``runlog``/``history`` keep the typed run record.
Nothing is imported eagerly; import the submodule you need.
"""
