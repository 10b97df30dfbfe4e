"""The lab's Kubernetes API emulator (contract B).

There is no kube-apiserver to install on the machines the lab runs on, so this package serves the
parts of the Kubernetes API the runbook touches, faithfully enough that ``kubectl`` and the official
Python client work against it unchanged. Run it with::

    python -m vcci_nb.lab.kube --host 127.0.0.1 --port P --dir D [--pods N] [--tokens-file F]

It is ready when ``GET /readyz`` answers 200. Lab-only endpoints under ``/_lab/`` inject and heal
faults (``oomkill``, ``crashloop``, ``bad-deploy``, ``disk-full``), reset the cluster, and expose
Prometheus metrics. Only the standard library is used, so importing this package is cheap.
"""

from __future__ import annotations

from vcci_nb.lab.kube._kubeconfig import kubeconfig_text, write_kubeconfig
from vcci_nb.lab.kube._world import FAULTS

__all__ = ["FAULTS", "kubeconfig_text", "write_kubeconfig"]
