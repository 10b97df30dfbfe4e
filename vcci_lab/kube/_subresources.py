# ruff: noqa: E501  (Status messages are the API server's exact wording)
"""The subresources with behaviour of their own: scale, eviction, pod logs (and follow) and exec."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vcci_lab.kube import _logs, _runner, _websocket
from vcci_lab.kube._selectors import selector_string
from vcci_lab.kube._store import Resource, copy_json
from vcci_lab.kube._util import (
    JSON,
    ApiError,
    bad_request,
    conflict,
    invalid,
    not_found,
    parse_time,
    rfc3339,
    status_body,
)
from vcci_lab.kube._world import DATA_PVC, NS, PODS, container_limit
from vcci_lab.kube._writes import Writes


def _log_options(q: dict[str, str], now: float) -> tuple[float | None, int | None, int | None, bool]:
    """``GET pods/{name}/log``'s query: (since, tailLines, limitBytes, timestamps), as the kubelet reads them."""
    since: float | None = None
    if q.get("sinceSeconds"):
        since = now - float(q["sinceSeconds"])
    elif q.get("sinceTime"):
        since = parse_time(q["sinceTime"])
    tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
    if tail is not None and tail < 0:
        tail = None
    limit_bytes = int(q["limitBytes"]) if q.get("limitBytes") else None
    return since, tail, limit_bytes, q.get("timestamps") in ("true", "1")


class Subresources(Writes):
    """``/scale``, ``/eviction``, ``/log`` and ``/exec`` (``/attach``) of a resource."""

    def _scale_obj(self, res: Resource, obj: JSON) -> JSON:
        st = obj.get("status") or {}
        sel = selector_string(obj["spec"].get("selector"))
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: obj["metadata"][k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in obj["metadata"]
            },
            "spec": {"replicas": int(obj["spec"].get("replicas", 1))},
            "status": {"replicas": int(st.get("replicas", 0)), "selector": sel},
        }

    def _scale(self, method: str, res: Resource, ns: str, name: str) -> None:
        store = self.emu.store
        with store.lock:
            obj = store.get(res.key, ns, name)
            if obj is None:
                self._drain()
                raise not_found(res.plural, res.group, name)
            scale = self._scale_obj(res, obj)
            if method == "GET":
                self.send_json(200, scale)
                return
            if method == "PUT":
                new_scale = self._read_obj()
            elif method == "PATCH":
                new_scale = self._apply_patch(copy_json(scale))
            else:
                raise ApiError(
                    status_body(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                )
            rv = (new_scale.get("metadata") or {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise conflict(res.plural, res.group, name)
            reps = (new_scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(reps, int) or isinstance(reps, bool):
                raise bad_request(
                    "json: cannot unmarshal string into Go struct field ScaleSpec.spec.replicas of type int32"
                )
            if reps < 0:
                raise invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [("spec.replicas", f"Invalid value: {reps}: must be greater than or equal to 0")],
                )
            new = copy_json(obj)
            new["spec"]["replicas"] = reps
            if reps != obj["spec"].get("replicas"):
                new["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
                if not self._dry():
                    obj = store.replace(res.key, new)
                    self.emu.world.dirty = True
                    store.changed.set()
                else:
                    obj = new
            out = self._scale_obj(res, obj)
        self.send_json(200, out)

    def _evict(self, res: Resource, ns: str, name: str) -> None:
        self._json_body()
        self._body_consumed = True
        store = self.emu.store
        with store.lock:
            pod = store.get(res.key, ns, name)
            if pod is None:
                raise not_found(res.plural, res.group, name)
            if not self._dry():
                now = time.time()
                rt = self.emu.world.runtimes.get(pod["metadata"]["uid"])
                if rt is not None and rt.local and not pod["metadata"].get("deletionTimestamp"):
                    rt.disruption = {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "lastProbeTime": None,
                        "lastTransitionTime": rfc3339(now),
                        "reason": "EvictionByEvictionAPI",
                        "message": "Eviction API: evicting",
                    }
                self.emu.world.terminate_pod(pod, now)
                store.changed.set()
        self.send_json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})

    def _pod_log(self, ns: str, name: str) -> None:
        store, world = self.emu.store, self.emu.world
        q = self.q
        with store.lock:
            found = store.get(PODS, ns, name)
            rt0 = world.runtimes.get(found["metadata"]["uid"]) if found else None
        if rt0 is not None and rt0.local:
            self._local_pod_log(ns, name)
            return
        with store.lock:
            pod = store.get(PODS, ns, name)
            if pod is None:
                raise not_found("pods", "", name)
            names = [c["name"] for c in pod["spec"].get("containers") or []]
            container = q.get("container") or ""
            if not container:
                if len(names) != 1:
                    raise bad_request(
                        f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                    )
                container = names[0]
            if container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            rt = world.runtimes.get(pod["metadata"]["uid"])
            if rt is None or rt.current is None or rt.stage == "creating":
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
            previous = q.get("previous") in ("true", "1")
            if previous:
                inst = rt.previous
                if rt.stage == "backoff" and rt.current is not None and rt.current.finished_at is not None:
                    # The kubelet answers --previous from lastState.terminated: in CrashLoopBackOff
                    # that is the run that just crashed (the same one plain `logs` shows).
                    inst = rt.current
                if inst is None:
                    raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            else:
                inst = rt.current
            image = pod["spec"]["containers"][0].get("image", "")
            app = rt.app
            uid = pod["metadata"]["uid"]
            limit = (container_limit(pod["spec"], "memory") or 4 * 1024**3) / 1024**3
            # writes fail only while the log volume really is full (cleaning it up through exec stops them)
            disk = world.faults.get("disk-full")
            vol = world.volumes.get((NS, DATA_PVC))
            full = vol is not None and vol.available < 0.05 * vol.capacity
            # the volume filled up over the ten minutes before anyone injected (noticed) it
            disk_since = parse_time(disk["since"]) - 600 if disk and full and ns == NS else None
            windows = {k: [(float(w[0] or 0.0), w[1]) for w in v] for k, v in world.flags.items()} if ns == NS else {}
        now = time.time()
        since, tail, limit_bytes, timestamps = _log_options(q, now)
        text = _logs.render(
            app=app,
            image=image,
            uid=uid,
            inst=inst,
            now=now,
            tail=tail,
            since=since,
            timestamps=timestamps,
            limit_bytes=limit_bytes,
            limit_gib=limit,
            disk_full_since=disk_since,
            windows=windows,
        )
        follow = q.get("follow") in ("true", "1") and not previous
        if not follow:
            self.send_bytes(200, text.encode(), "text/plain")
            return
        self._start_stream("text/plain")
        try:
            self._chunk(text.encode())
            sent_until = now
            while True:
                time.sleep(1.0)
                with store.lock:
                    cur = world.runtimes.get(uid)
                    alive = store.get(PODS, ns, name) is not None and cur is not None and cur.current is inst
                t = time.time()
                more = _logs.render(
                    app=app,
                    image=image,
                    uid=uid,
                    inst=inst,
                    now=t,
                    tail=None,
                    since=sent_until + 1e-6,
                    timestamps=timestamps,
                    limit_bytes=None,
                    limit_gib=limit,
                    disk_full_since=disk_since,
                    windows=windows,
                )
                sent_until = t
                self._chunk(more.encode())
                if not alive or inst.finished_at is not None:
                    break
            self._end_stream()
        except OSError:
            self.close_connection = True

    def _local_pod_log(self, ns: str, name: str) -> None:
        """The log of a Job's pod: what its process wrote (see ``_runner``)."""
        store, world = self.emu.store, self.emu.world
        q = self.q
        with store.lock:
            pod = store.get(PODS, ns, name)
            if pod is None:
                raise not_found("pods", "", name)
            names = [c["name"] for c in pod["spec"].get("containers") or []]
            container = q.get("container") or (names[0] if len(names) == 1 else "")
            if not container:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
                )
            if container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            rt = world.runtimes.get(pod["metadata"]["uid"])
            previous = q.get("previous") in ("true", "1")
            if rt is None:
                raise bad_request(f'container "{container}" in pod "{name}" is terminated')
            if previous:
                inst = rt.current if rt.stage == "backoff" else rt.previous
                if inst is None:
                    raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            else:
                inst = rt.current
                if inst is None or rt.stage in ("creating", "configerror"):
                    waiting = "CreateContainerConfigError" if rt.stage == "configerror" else "ContainerCreating"
                    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {waiting}')
            proc = rt.proc if inst is rt.current else None
        now = time.time()
        since, tail, limit_bytes, timestamps = _log_options(q, now)
        path = Path(inst.log_path) if inst.log_path else None
        if path is None:
            text, offset = "", 0
        else:
            text, offset = _runner.read_log(
                path, tail=tail, since=since, timestamps=timestamps, limit_bytes=limit_bytes
            )
        follow = q.get("follow") in ("true", "1") and not previous and path is not None
        if not follow:
            self.send_bytes(200, text.encode(), "text/plain")
            return
        assert path is not None
        self._start_stream("text/plain")
        try:
            self._chunk(text.encode())
            while True:
                done = inst.finished_at is not None and (proc is None or not proc.reader.is_alive())
                with store.lock:
                    gone = store.get(PODS, ns, name) is None
                more, offset = _runner.read_log(
                    path, tail=None, since=None, timestamps=timestamps, limit_bytes=None, offset=offset
                )
                self._chunk(more.encode())
                if done or gone:
                    break
                time.sleep(0.2)
            self._end_stream()
        except OSError:
            self.close_connection = True

    def _exec(self, ns: str, name: str, role: str | None) -> None:
        store, world = self.emu.store, self.emu.world
        cmd = self.query_multi.get("command", [])
        with store.lock:
            pod = store.get(PODS, ns, name)
            if pod is None:
                raise not_found("pods", "", name)
            names = [c["name"] for c in pod["spec"].get("containers") or []]
            container = self.q.get("container") or (names[0] if names else "")
            if container not in names:
                raise bad_request(f"container {container} is not valid for pod {name}")
            rt = world.runtimes.get(pod["metadata"]["uid"])
            if rt is None or rt.stage not in ("starting", "ready"):
                raise bad_request(f'unable to upgrade connection: container not found ("{container}")')
        upgrade = (self.headers.get("Upgrade") or "").lower()
        if upgrade != "websocket":
            raise ApiError(
                status_body(
                    400,
                    "BadRequest",
                    "Upgrade request required: the lab's Kubernetes emulator serves exec over WebSocket only (kubectl >= 1.30 or the Python client's stream())",
                )
            )
        proto = _websocket.choose_protocol(self.headers.get("Sec-WebSocket-Protocol") or "")
        if proto is None:
            raise bad_request(
                "unable to upgrade connection: no supported subprotocol (want v5.channel.k8s.io or v4.channel.k8s.io)"
            )
        key = self.headers.get("Sec-WebSocket-Key") or ""
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", _websocket.accept_key(key))
        self.send_header("Sec-WebSocket-Protocol", proto)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        ch = _websocket.ChannelWriter(self.wfile, self.connection)  # type: ignore[arg-type]
        tty = self.q.get("tty") in ("true", "1")
        interactive = (
            self.q.get("stdin") in ("true", "1")
            and bool(cmd)
            and cmd[0].rsplit("/", 1)[-1] in ("sh", "bash", "ash", "dash")
            and "-c" not in cmd
        )
        try:
            if interactive:
                code: int | None = self._exec_shell(ch, ns, name, tty)
            else:
                with store.lock:
                    pod = store.get(PODS, ns, name)
                    fs = world.container_fs(pod, time.time()) if pod else None
                    result = fs.run(cmd) if fs else None
                code = None
                if result is not None:
                    if self.q.get("stdout", "true") in ("true", "1") and result.stdout:
                        ch.send(1, _crlf(result.stdout, tty).encode())
                    if result.stderr:
                        # with a tty stderr is merged into stdout
                        ch.send(1 if tty else 2, _crlf(result.stderr, tty).encode())
                    code = result.code
            if code is None:
                ch.send(3, json.dumps({"metadata": {}, "status": "Failure", "message": "pod went away"}).encode())
            elif code == 0:
                ch.send(3, json.dumps({"metadata": {}, "status": "Success"}).encode())
            else:
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": f"command terminated with non-zero exit code: error executing command {json.dumps(cmd)}, exit code {code}",
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                }
                ch.send(3, json.dumps(status).encode())
            world.dirty = True
            ch.close()
            # wait briefly for the client's close frame so it sees a clean shutdown
            self.connection.settimeout(2.0)
            for _ in range(8):
                fr = _websocket.read_frame(self.rfile)  # type: ignore[arg-type]
                if fr is None or fr[0] == _websocket.OP_CLOSE:
                    break
        except OSError:
            pass

    def _exec_shell(self, ch: _websocket.ChannelWriter, ns: str, name: str, tty: bool) -> int | None:
        """``kubectl exec -it ... -- sh``: a line-at-a-time shell over the stdin channel.

        With a tty the emulator plays the terminal's line discipline (echo, backspace, Ctrl-C,
        Ctrl-D); without one it runs each line it reads until stdin closes.
        """
        store, world = self.emu.store, self.emu.world
        prompt = f"{name}:/app$ "
        if tty:
            ch.send(1, prompt.encode())
        self.connection.settimeout(3600)
        buf = ""
        last = 0

        def run(line: str) -> bool:
            nonlocal last
            line = line.strip()
            if not line:
                return True
            with store.lock:
                pod = store.get(PODS, ns, name)
                if pod is None:
                    return False
                r = world.container_fs(pod, time.time()).run(["sh", "-c", line])
            out = r.stdout + r.stderr if tty else r.stdout
            if out:
                ch.send(1, _crlf(out, tty).encode())
            if r.stderr and not tty:
                ch.send(2, r.stderr.encode())
            last = r.code
            return not line.startswith("exit")

        while True:
            fr = _websocket.read_frame(self.rfile)  # type: ignore[arg-type]
            if fr is None or fr[0] == _websocket.OP_CLOSE:
                break
            op, data = fr
            if op == _websocket.OP_PING:
                self.wfile.write(_websocket.frame(_websocket.OP_PONG, data))
                continue
            if op not in (_websocket.OP_BINARY, _websocket.OP_TEXT) or not data:
                continue
            stream_id, payload = data[0], data[1:]
            if stream_id == 255:  # v5: the client closed stdin
                run(buf)
                break
            if stream_id != 0:
                continue  # resize events and anything else
            for c in payload.decode(errors="replace"):
                if not tty:
                    if c == "\n":
                        if not run(buf):
                            return last
                        buf = ""
                    else:
                        buf += c
                    continue
                if c in "\r\n":
                    ch.send(1, b"\r\n")
                    if not run(buf):
                        return last
                    buf = ""
                    ch.send(1, prompt.encode())
                elif c in "\x7f\b":
                    if buf:
                        buf = buf[:-1]
                        ch.send(1, b"\b \b")
                elif c == "\x03":
                    buf = ""
                    ch.send(1, ("^C\r\n" + prompt).encode())
                elif c == "\x04" and not buf:
                    ch.send(1, b"exit\r\n")
                    return last
                elif c >= " ":
                    buf += c
                    ch.send(1, c.encode())
        return last


def _crlf(text: str, tty: bool) -> str:
    """A terminal turns \\n into \\r\\n; so does the emulated one."""
    return text.replace("\n", "\r\n") if tty else text
