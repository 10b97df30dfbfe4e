"""The lab's commands for ``vcci-nb`` (``lab``, ``demo``).

pyproject.toml registers each module's ``register(subparsers)`` under the ``vcci_nb.commands``
entry points; ``vcci_nb.cli`` loads them when it builds its parser, so the product package never
imports the lab.
"""
