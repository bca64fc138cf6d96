"""The on-premises bridge. Its published interface (what other features may import) is this
module, empty for now: no other feature uses the bridge, and the entry points (``chalice_app``,
``workers.bridge``, ``meterflow.localcloud``) compose it through ``meterflow.bridge.wiring``.
import-linter's "bridge internals" contract (pyproject.toml) keeps it that way.
"""
