"""How fast requests may start and how many may be in flight: two knobs, a rate (:class:`~.knobs.Rate`) and a
window (:class:`~.knobs.Flight`), that find the provider's limit whatever its shape and hold it with few 429s.
:class:`Pace` (``control``) is what the dispatcher talks to; ``judge`` judges its cuts, ``meter`` measures.

The model is the contract's ("Pace (429s)", "Limits have shapes"), after the AWS SDKs' adaptive retry mode
(botocore's token bucket and ``CubicCalculator``) for the rate, Netflix's concurrency-limits (AIMD) and TCP's
congestion window for the window:

* slow start: the rate doubles each round-trip until the first 429, so a hidden limit is found quickly;
* a 429 cuts the rate to 0.7 of what was being sent (or let through, if less), at most once per round-trip:
  only a 429 to a request sent after the last cut counts. CUBIC then grows it back while answers come
  without 429s: to just below the rate of the cut within :data:`~.knobs.RECOVERY` seconds, a plateau there, then a
  probe beyond it. (K is a fixed time rather than botocore's ``C``-derived one, so recovery takes as long at
  300 requests/s as at 3.)
* scattered 429s are told apart by evidence. A cut is judged by the answers to requests sent in the half
  second after it: if 429s did not become rarer, or if more got through per second than when the 429 came,
  they were not about the pace. The cut is undone (growth resumes where it stood, but a probe beyond the last
  cut first holds a plateau), and when two judgements in a row say so over 50 answers or more (one can be
  fooled by another run on the same key probing the limit at that moment; fewer answers are no share),
  their share (at most the share of the last few hundred answers) is learned as background, so that later
  429s at that share cost nothing;
* the whole run pauses (for the Retry-After) only when most answers of the last round-trip were 429s, and
  then the rate comes down to 0.7 of what got through, if the last cut left it above that;
* 5xx answers slow the run like a 429 only when most recent answers are 5xx;
* ``cap`` (``rate``) is a hard ceiling on top: a token bucket on absolute times (GCRA), so timer lateness
  never accumulates;
* a window bounds the requests in flight (at most ``ceiling``, the ``concurrency``): it starts small, doubles per
  round-trip while it is full, and a 429 cuts it instead of the rate when its request went with the window
  nearly full and more in flight than any accepted request (what a cap on requests in flight refuses); CUBIC
  regrows it like the rate. A rate limit's 429s come at any number in flight: they cut the rate;
* a Retry-After beyond :data:`~.control.LONG_RETRY_AFTER` (a quota) pauses the whole run for that long at
  once, and is no reason to cut: it says nothing about the pace.

The clock is injected, so the control law is tested in milliseconds on a fake one (``tests/pace_sim.py``).
"""

from .control import LONG_RETRY_AFTER, Pace
from .knobs import Ticket

__all__ = ["LONG_RETRY_AFTER", "Pace", "Ticket"]
