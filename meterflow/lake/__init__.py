"""The meter data lake. Its published interface (what other features may import) is this module,
empty for now: no other feature uses the lake, and the entry points (``chalice_app``,
``workers.lake``, ``meterflow.localcloud``) compose it through ``meterflow.lake.wiring``.
import-linter's "lake internals" contract (pyproject.toml) keeps it that way.
"""
