"""The HES simulator's published interface: the only names other features may import from it.

The lake builds its network topology from the same deterministic :class:`Fleet` (meter ids and
:class:`MeterClass`) and publishes, as its simulated weather, the very :func:`temperature_c` series
the fleet's load model responds to. Everything else in ``meterflow.hes`` (``domain``, ``ports``,
``adapters``, ``settings``, ``wiring``) is internal to the feature: import-linter's "HES internals"
contract (pyproject.toml) lets only the feature itself and the entry points (``chalice_app``,
``workers.hes``, ``meterflow.localcloud``) import it.
"""

from meterflow.hes.domain.fleet import Fleet, MeterClass
from meterflow.hes.domain.weather import temperature_c

__all__ = ["Fleet", "MeterClass", "temperature_c"]
