"""How fast requests may start and how many may be in flight: a model of what the provider lets through
(``model``), paced evenly (``slots``), with the requests in flight it needs (``flight``), and the provider's own
words about its limits (``control``, ``outage``). ``docs/pace.md`` has the model in a page and its rules.

The clock is injected, so the model is tested in milliseconds on a fake one (``tests/support/pace_sim.py``).
"""

from .control import LONG_RETRY_AFTER, Pace
from .slots import Ticket

__all__ = ["LONG_RETRY_AFTER", "Pace", "Ticket"]
