"""Readers of the data the heads, the CLI, the app and the evaluation take in.

Each reader checks what it reads and says what was expected; limits (bytes, rows) are
parameters, so the app can apply its own and the command line none.

- :mod:`embedsuite.data.uploads`: the text of an uploaded file (UTF-8, not binary).
- :mod:`embedsuite.data.tables`: labelled ``text,label`` CSV / TSV files.
- :mod:`embedsuite.data.sst2`: SST-2's ``sentence<TAB>0|1`` files.
- :mod:`embedsuite.data.squad`: SQuAD v1.1 JSON.
"""
