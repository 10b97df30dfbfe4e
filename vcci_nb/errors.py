"""The errors vcci_nb raises.

Every message says what went wrong and what the on-call engineer should do next.
No message ever carries a secret: build them from redacted values only.

    VcciNbError
    ├── ConfigError            bad profile, parameter file, or environment
    ├── ParameterError         a notebook parameter that is unknown, mistyped or unsafe
    ├── SourceError            a data source could not be asked (normally folded into Evidence)
    │   └── SourceMisconfigured  a setting names something that is not there (a kube context)
    ├── RecordError            the incident record could not be read or written
    ├── ActionRefused          a guarded action was refused (unsafe target, no confirmation)
    ├── RunError               a notebook or bundle run failed
    └── LabError               the local lab could not start, stop or inject a fault
"""

from __future__ import annotations


class VcciNbError(Exception):
    """Base of every error vcci_nb raises on purpose."""


class ConfigError(VcciNbError):
    """A profile, parameter file or environment variable is missing or malformed."""


class ParameterError(VcciNbError):
    """A notebook parameter is unknown, has the wrong type, or could be executed as code."""


class SourceError(VcciNbError):
    """A data source could not be asked. Gathering functions fold this into Evidence."""


class SourceMisconfigured(SourceError):
    """A setting points at something that does not exist (a kube context the kubeconfig lacks).

    ``cause`` is a short word (``config``); ``fix`` says which setting to change and to what. Gather
    functions fold it into Evidence, and the finding built from that evidence repeats the fix.
    """

    def __init__(self, message: str, *, fix: str, cause: str = "config") -> None:
        super().__init__(message)
        self.cause = cause
        self.fix = fix


class RecordError(VcciNbError):
    """The incident record could not be read or written."""


class ActionRefused(VcciNbError):
    """A guarded action was refused: unsafe target, missing confirmation, or a dry run."""


class RunError(VcciNbError):
    """A notebook or bundle run failed."""


class LabError(VcciNbError):
    """The local lab could not start, stop, or inject or heal a fault."""
