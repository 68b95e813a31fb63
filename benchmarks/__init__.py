"""rankwise's benchmarks: one script a study (run as ``python benchmarks/NAME.py`` or
``python -m benchmarks.NAME``), sharing :mod:`benchmarks.settings` (paths, the stdlib-code
training budget) and the run cache, machine record and retrieval measures (``_cache``,
``_machine``, ``_retrieval``). Tables are in ``benchmarks/README.md``."""
