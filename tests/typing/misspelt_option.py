"""Checked by ``mypy --strict`` in .ci/run's types step, not run: every option of ``batchgen.run`` is a typed
keyword, so a misspelt one is an error. If it stopped being one, this ignore would be unused, and
``--strict`` (``warn_unused_ignores``) fails on it."""

import batchgen

batchgen.run("in.csv", "out.xlsx", concurency=4)  # type: ignore[call-arg]
