"""The lab's Kubernetes API emulator (contract B).

There is no kube-apiserver to install on the machines the lab runs on, so this package serves the
parts of the Kubernetes API the runbook touches, faithfully enough that ``kubectl`` and the official
Python client work against it unchanged. Run it with::

    python -m vcci_lab.kube --host 127.0.0.1 --port P --dir D [--pods N] [--tokens-file F]

It is ready when ``GET /readyz`` answers 200. It answers plain HTTP and TLS on the same port:
kubectl sends a kubeconfig's token only to an ``https://`` server, so :func:`write_kubeconfig`
(called while the emulator runs) fetches the emulator's CA from ``/_lab/ca.crt`` and writes the
``https://`` URL with that CA. Lab-only endpoints under ``/_lab/`` inject and heal faults
(``oomkill``, ``crashloop``, ``bad-deploy``, ``disk-full``), reset the cluster, and expose Prometheus
metrics; ``POST /_lab/pods/{namespace}/{name}/node-lost`` loses one pod with its node (its process
killed at once, ``DisruptionTarget``/DeletionByTaintManager, deleted: a Job replaces it). Only the
standard library (and the ``openssl`` command, for the certificate) is used.

Where it differs from a real cluster (on purpose or for lack of time):

- Time is compressed: a pod is Ready about a second after it is created, a crashing container dies
  a second after it starts and backs off 5-20 s (not 10 s-5 min), an OOM-prone one is killed every
  12-25 s. Terminating pods disappear after about a second whatever their grace period.
- One controller thread plays deployment, replica-set and stateful-set controllers, scheduler,
  kubelet and metrics-server. Rolling updates honour maxSurge/maxUnavailable but not minReadySeconds,
  paused rollouts, Recreate, proportional scaling or revisionHistoryLimit. Services, RBAC objects
  and PodDisruptionBudgets are stored and listed, but nothing acts on them (RBAC objects are not
  enforced: the tokens file's ``view``/``admin`` roles are). Namespaces are deleted at once.
- Jobs run (``_jobs``): a Job's pod's first container's ``command`` + ``args`` run as a local process,
  with this Python environment's ``bin`` first on ``PATH`` standing in for the image (no image
  entrypoints: a container without ``command`` fails to start), in a fresh working folder, with the
  spec's ``env``/``envFrom`` resolved from stored Secrets and ConfigMaps. Its output is the pod's log.
  A Job's pod is bound to a node only when the node's allocatable CPU and memory less the requests
  of its unfinished pods cover the pod's requests (least allocated first); otherwise it stays
  Pending (``Unschedulable``, FailedScheduling) and the scheduler retries every second. The seeded
  pods are placed as before, whatever their requests. ``kubectl top`` (and ``/_lab/metrics``) show
  a Job pod's real CPU and resident memory: its process tree's, read from ``/proc``.
  Back-off between retries is 1-8 s (not 10 s-6 min); podFailurePolicy (Ignore/FailJob/Count on
  exit codes and pod conditions) and podReplacementPolicy are honoured; a pod's other containers,
  init containers, probes, volumes (emptyDir is the process's working folder), securityContext,
  resources, serviceAccountName (not checked to exist), indexed completion and successPolicy are not
  acted on (suspend is: no pods while suspended, JobSuspended/JobResumed).
- Authorization: ``view`` may get/list/watch everything except Secrets (and may not exec);
  ``admin`` may do everything. ``kubectl auth can-i`` and ``auth whoami`` answer from those roles.
- OpenAPI v3 is minimal (the PATCH operations and their ``fieldValidation`` parameter, no schemas):
  ``kubectl apply``/``create -f`` work, ``kubectl explain`` shows nothing, no ``/openapi/v2``, and the
  server does not reject unknown fields (``fieldValidation`` is ignored). No server-side apply, no
  protobuf, no aggregated discovery (kubectl falls back to the legacy documents), no
  port-forward/attach/proxy. Exec speaks WebSocket only (v4/v5.channel.k8s.io,
  kubectl >= 1.30 and the Python client), not SPDY.
- Validation covers what the runbook can get wrong (replicas, quantities, requests > limits, env
  names, selector immutability, label/annotation values that are not strings, pod spec immutability,
  PVC shrink), not the whole schema. Unknown fields are kept, not pruned.
- Tables are served for the common kinds (pods, nodes, deployments, replicasets, statefulsets,
  events, ingresses, configmaps, secrets, pvcs, namespaces, services); other kinds (jobs, roles...)
  get NAME and CREATED AT instead of their real columns.
- Logs are generated, deterministic per pod and restart, and only for the current and previous
  container; exec runs a small set of commands (df, du, find, rm, ls, cat, echo, env, printenv,
  head, tail, grep, wc, sort, hostname, id, date, uname, sleep, true, false, exit; ``sh -c`` with
  ``;``, ``&&``, ``||``, ``|``, globs and ``$VAR``) over a simulated filesystem; anything else
  is "executable file not found" (exit 127). psql, redis-cli and curl are not in the container.
- The ``vcci-api-data`` PVC is ReadWriteMany and shared by all vcci-api pods at ``/var/log``;
  each pod's ``/tmp`` is on its own overlay. Expanding the PVC resizes it about a second later.
- Faults: healing ``oomkill``/``crashloop`` replaces the affected pods (as a fix rollout would), so
  restart counts and ``lastState`` go back to zero; healing ``bad-deploy`` rolls back if nobody has.
  ``disk-full`` adds "No space left on device" errors to vcci-api logs from ten minutes before the
  injection for as long as the volume stays over 95% full.
- State lives in memory: restarting the emulator or ``POST /_lab/reset`` starts from the initial
  cluster (resourceVersions keep increasing across a reset, so watches are told to relist).
"""

from __future__ import annotations

from vcci_lab.kube._kubeconfig import kubeconfig_text, write_kubeconfig
from vcci_lab.kube._world import FAULTS

__all__ = ["FAULTS", "kubeconfig_text", "write_kubeconfig"]
