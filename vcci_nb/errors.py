"""The errors vcci_nb raises.

Every message says what went wrong and what the on-call engineer should do next.
No message ever carries a secret: build them from redacted values only.

    VcciNbError
    ├── ConfigError              bad profile, parameter file, or environment
    ├── ParameterError           a notebook parameter that is unknown, mistyped or unsafe
    ├── SourceError              a data source could not be asked (normally folded into Evidence)
    │   ├── SourceMisconfigured  a setting names something that is not there (a kube context)
    │   ├── SourceUnavailable    the source answered but cannot provide this (an extension missing)
    │   ├── DeadlineExceeded     no answer within the hard deadline (also a TimeoutError)
    │   └── KubeApiError         the Kubernetes API answered an error, or did not answer (.status)
    ├── RecordError              the incident record could not be read or written
    ├── ActionRefused            a guarded action was refused (unsafe target, no confirmation)
    │   └── ActionRefusedWithOutcome   ... carrying the outcome and audit entry of the refusal
    ├── ActionFailed             a confirmed action raised while executing (.outcome: its audit entry)
    ├── NotifyError              a notification could not be prepared (channel, template, settings)
    ├── RunError                 a notebook or bundle run failed
    │   ├── NotebookFailed       one notebook failed: cell index, exception name and value
    │   └── ZygoteUnavailable    the runner's fork server cannot start a kernel (it falls back)
    ├── PayloadError             (vcci_nb.alerts.payload) a webhook body is not an Alertmanager v4 payload
    ├── StoreError               (vcci_nb.alerts.store) the receiver's state database could not be written
    └── LabError                 the local lab could not start, stop or inject a fault

Every class is defined here except the two the alert back end keeps beside its code (named
above with their module); they derive from :class:`VcciNbError` all the same.
"""

from __future__ import annotations

from typing import Any


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


class SourceUnavailable(SourceError):
    """The source answered but cannot provide this data (an extension or library is missing)."""


class DeadlineExceeded(SourceError, TimeoutError):
    """The hard deadline passed before the source answered."""


class KubeApiError(SourceError):
    """The Kubernetes API answered with an error, or did not answer (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class RecordError(VcciNbError):
    """The incident record could not be read or written."""


class ActionRefused(VcciNbError):
    """A guarded action was refused: unsafe target, missing confirmation, or a dry run."""


class ActionRefusedWithOutcome(ActionRefused):
    """An :class:`ActionRefused` that carries the outcome (and audit entry) of the refusal."""

    def __init__(self, message: str, outcome: Any) -> None:
        super().__init__(message)
        self.outcome = outcome


class ActionFailed(VcciNbError):
    """A confirmed action raised while executing. ``outcome`` holds the audit entry that was written."""

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class NotifyError(VcciNbError):
    """A notification could not be prepared (unknown channel or template, bad settings)."""


class RunError(VcciNbError):
    """A notebook or bundle run failed."""


class NotebookFailed(RunError):
    """One notebook of a run failed, kept as papermill keeps it: where, and what was raised.

    ``cell_index`` is the 0-based index of the failing cell in the notebook (None when the failure
    was not in a cell: the kernel died, the run timed out); ``exec_count`` its ``In [n]``;
    ``ename``/``evalue`` the exception's name and (redacted) value.
    """

    def __init__(
        self,
        notebook: str,
        message: str,
        *,
        cell_index: int | None = None,
        exec_count: int | None = None,
        ename: str = "",
        evalue: str = "",
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.exec_count = exec_count
        self.ename = ename
        self.evalue = evalue

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "message": str(self),
            "cell_index": self.cell_index,
            "exec_count": self.exec_count,
            "ename": self.ename,
            "evalue": self.evalue,
        }


class ZygoteUnavailable(RunError):
    """The runner's fork server cannot start this kernel; the runner starts one the plain way."""


class LabError(VcciNbError):
    """The local lab could not start, stop, or inject or heal a fault."""
