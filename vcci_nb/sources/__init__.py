"""Talking to one system each, read-only, with timeouts; every call returns an Evidence.

Conventions shared by every module here:

- ``gather_<what>(profile=None, *, ..., timeout=5.0) -> Evidence``; ``profile`` is a Profile, a
  profile name, or None (``VCCI_NB_PROFILE``, else ``lab``). Keyword names ``namespace``,
  ``window`` and ``baseline`` mean the same everywhere, so ``Context.ask`` can fill them in.
- The Evidence is named ``<source>.<what>`` (``postgres.connections``) and keeps that name in
  ``meta["kind"]`` even when a notebook stores it under another name; analysis finds it by kind.
- A source that is down, refuses us, or hangs gives ``unavailable``, ``forbidden`` or ``timeout``
  within the timeout (plus a one-second hard deadline), never an exception.

Modules: :mod:`kube`, :mod:`postgres`, :mod:`redis`, :mod:`prometheus`, :mod:`rabbitmq`,
:mod:`http`, :mod:`git`, :mod:`s3`; :mod:`logs` (line parsing and error signatures) and
:mod:`window` (incident window, baseline, step) are pure helpers.
"""

from vcci_nb.sources._core import classify, collect, run_with_deadline

__all__ = ["classify", "collect", "run_with_deadline"]
