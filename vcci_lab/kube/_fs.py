# ruff: noqa: E501, S108  (/tmp paths are inside the simulated container)
"""A simulated container filesystem and the few commands the runbook runs in it.

Mounts: the container's overlay root (per pod), and the ``vcci-api-data`` PersistentVolumeClaim at
``/var/log`` (shared by the vcci-api pods). File sizes are numbers, not bytes on disk, so a 13 GiB
log directory costs nothing. The PVC's usage is what ``kubelet_volume_stats_*`` reports, so cleaning
old logs through ``kubectl exec`` really moves the metric.

Commands run without a shell, as ``kubectl exec`` does: ``rm -rf /tmp/*`` removes a file literally
named ``*``; wrap it in ``sh -c '...'`` to get glob expansion, exactly as on a real container.
"""

from __future__ import annotations

import fnmatch
import posixpath
import shlex
import time
from dataclasses import dataclass, field

from vcci_lab.kube._util import human_bytes

GiB = 1024**3
MiB = 1024**2


@dataclass
class FileEntry:
    size: int
    mtime: float


@dataclass
class Volume:
    """One filesystem: a device name, a capacity, a base usage not made of listed files, and files."""

    device: str
    capacity: int
    base_used: int
    files: dict[str, FileEntry] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return self.base_used + sum(f.size for f in self.files.values())

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.used)


@dataclass
class Mount:
    path: str
    volume: Volume


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    code: int = 0

    def add(self, other: Result) -> None:
        self.stdout += other.stdout
        self.stderr += other.stderr
        self.code = other.code


class ContainerFS:
    """The mounts one container sees, most specific first when resolving a path."""

    def __init__(self, mounts: list[Mount], *, hostname: str, env: dict[str, str]) -> None:
        self.mounts = sorted(mounts, key=lambda m: len(m.path), reverse=True)
        self.hostname = hostname
        self.env = env
        self._stdin = ""

    # -- paths ---------------------------------------------------------------------------------
    def mount_for(self, path: str) -> Mount:
        path = posixpath.normpath(path)
        for m in self.mounts:
            if path == m.path or path.startswith(m.path.rstrip("/") + "/") or m.path == "/":
                return m
        return self.mounts[-1]

    def all_files(self) -> dict[str, FileEntry]:
        out: dict[str, FileEntry] = {}
        for m in reversed(self.mounts):
            for p, f in m.volume.files.items():
                # a file belongs to the mount it would resolve to
                if self.mount_for(p) is m:
                    out[p] = f
        return out

    def dirs(self) -> set[str]:
        ds = {"/", "/tmp", "/var", "/var/log", "/app", "/etc", "/proc", "/dev"}
        for p in self.all_files():
            d = posixpath.dirname(p)
            while d not in ("/", ""):
                ds.add(d)
                d = posixpath.dirname(d)
        for m in self.mounts:
            ds.add(m.path)
        return ds

    def exists(self, path: str) -> bool:
        path = posixpath.normpath(path)
        return path in self.all_files() or path in self.dirs()

    def glob(self, pattern: str) -> list[str]:
        if not any(c in pattern for c in "*?["):
            return [pattern]
        names = sorted(set(self.all_files()) | self.dirs())
        depth = pattern.count("/")
        hits = [n for n in names if n.count("/") == depth and fnmatch.fnmatchcase(n, pattern)]
        return hits or [pattern]

    # -- the shell -----------------------------------------------------------------------------
    def run(self, argv: list[str], now: float | None = None, stdin: str = "") -> Result:
        now = time.time() if now is None else now
        self._stdin = stdin
        if not argv:
            return Result(stderr="error: you must specify at least one command for the container\n", code=1)
        cmd, args = argv[0], argv[1:]
        base = posixpath.basename(cmd)
        if base in ("sh", "bash", "ash", "dash") and len(args) >= 2 and args[0] == "-c":
            return self._shell(args[1], now)
        handler = getattr(self, f"_cmd_{base.replace('-', '_')}", None)
        if handler is None:
            return Result(
                stderr=f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{cmd}": '
                "executable file not found in $PATH: unknown\n",
                code=127,
            )
        result: Result = handler(args, now)
        return result

    def _shell(self, script: str, now: float) -> Result:
        """A tiny ``sh -c``: words, globs, ``;``, ``&&``, ``||``. Enough for cleanup one-liners."""
        total = Result()
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
        lexer.wordchars += "*?[]/.-+=~$,:@%^"
        lexer.whitespace_split = True
        tokens = list(lexer)
        cmds: list[tuple[list[str], str]] = []
        cur: list[str] = []
        for t in tokens:
            if t in (";", "&&", "||", "|"):
                cmds.append((cur, t))
                cur = []
            else:
                cur.append(t)
        cmds.append((cur, ";"))
        prev_op = ";"
        last = 0
        pipe_in: str | None = None
        for words, op in cmds:
            if not words:
                prev_op = op
                continue
            if pipe_in is None and ((prev_op == "&&" and last != 0) or (prev_op == "||" and last == 0)):
                prev_op = op
                continue
            if words[0] == "exit":
                total.code = int(words[1]) if len(words) > 1 and words[1].isdigit() else last
                return total
            expanded: list[str] = [words[0]]
            for w in words[1:]:
                if w.startswith("$") and w[1:] in self.env:
                    expanded.append(self.env[w[1:]])
                else:
                    expanded.extend(self.glob(w))
            r = self.run(expanded, now, stdin=pipe_in or "")
            if r.code == 127:
                r.stderr = f"sh: 1: {words[0]}: not found\n"
            if op == "|":
                pipe_in = r.stdout
                total.stderr += r.stderr
            else:
                pipe_in = None
                total.add(r)
            last = r.code
            prev_op = op
        total.code = last
        return total

    # -- commands ------------------------------------------------------------------------------
    def _cmd_true(self, args: list[str], now: float) -> Result:
        return Result()

    def _cmd_false(self, args: list[str], now: float) -> Result:
        return Result(code=1)

    def _cmd_echo(self, args: list[str], now: float) -> Result:
        return Result(stdout=" ".join(args) + "\n")

    def _cmd_hostname(self, args: list[str], now: float) -> Result:
        return Result(stdout=self.hostname + "\n")

    def _cmd_whoami(self, args: list[str], now: float) -> Result:
        return Result(stdout="app\n")

    def _cmd_id(self, args: list[str], now: float) -> Result:
        return Result(stdout="uid=1000(app) gid=1000(app) groups=1000(app)\n")

    def _cmd_pwd(self, args: list[str], now: float) -> Result:
        return Result(stdout="/app\n")

    def _cmd_date(self, args: list[str], now: float) -> Result:
        return Result(stdout=time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(now)) + "\n")

    def _cmd_uname(self, args: list[str], now: float) -> Result:
        if "-a" in args:
            return Result(stdout=f"Linux {self.hostname} 6.1.115-126.197.amzn2023.x86_64 #1 SMP x86_64 GNU/Linux\n")
        return Result(stdout="Linux\n")

    def _cmd_env(self, args: list[str], now: float) -> Result:
        return Result(stdout="".join(f"{k}={v}\n" for k, v in sorted(self.env.items())))

    def _cmd_printenv(self, args: list[str], now: float) -> Result:
        if args:
            vals = [self.env[a] for a in args if a in self.env]
            return Result(stdout="".join(v + "\n" for v in vals), code=0 if len(vals) == len(args) else 1)
        return self._cmd_env(args, now)

    def _cmd_sleep(self, args: list[str], now: float) -> Result:
        try:
            time.sleep(min(float(args[0]) if args else 0.0, 5.0))
        except ValueError:
            return Result(stderr=f"sleep: invalid time interval '{args[0]}'\n", code=1)
        return Result()

    def _lines_in(self, args: list[str]) -> list[str]:
        files = [a for a in args if not a.startswith("-")]
        if files:
            return [f"[{p}: log data not kept by the emulator]" for p in files]
        return self._stdin.splitlines()

    def _cmd_head(self, args: list[str], now: float) -> Result:
        n = _count_arg(args, 10)
        return Result(stdout="".join(x + "\n" for x in self._lines_in(_no_count(args))[:n]))

    def _cmd_tail(self, args: list[str], now: float) -> Result:
        n = _count_arg(args, 10)
        lines = self._lines_in(_no_count(args))
        return Result(stdout="".join(x + "\n" for x in (lines[-n:] if n else [])))

    def _cmd_wc(self, args: list[str], now: float) -> Result:
        lines = self._lines_in(args)
        return Result(stdout=f"{len(lines)}\n")

    def _cmd_sort(self, args: list[str], now: float) -> Result:
        lines = sorted(self._lines_in(args), reverse="-r" in args)
        return Result(stdout="".join(x + "\n" for x in lines))

    def _cmd_grep(self, args: list[str], now: float) -> Result:
        flags = [a for a in args if a.startswith("-")]
        words = [a for a in args if not a.startswith("-")]
        if not words:
            return Result(stderr="Usage: grep [OPTION]... PATTERNS [FILE]...\n", code=2)
        pat, insensitive, invert = words[0], any("i" in f for f in flags), any("v" in f for f in flags)
        hits = [
            x for x in self._stdin.splitlines() if ((pat.lower() in x.lower()) if insensitive else (pat in x)) != invert
        ]
        return Result(stdout="".join(x + "\n" for x in hits), code=0 if hits else 1)

    def _cmd_df(self, args: list[str], now: float) -> Result:
        human = any(a in ("-h", "--human-readable") or (a.startswith("-") and "h" in a) for a in args)
        paths = [a for a in args if not a.startswith("-")]
        mounts = [self.mount_for(p) for p in paths] if paths else list(reversed(self.mounts))
        for p in paths:
            if not self.exists(p):
                return Result(stderr=f"df: {p}: No such file or directory\n", code=1)
        if human:
            rows = [("Filesystem", "Size", "Used", "Avail", "Use%", "Mounted on")]
        else:
            rows = [("Filesystem", "1K-blocks", "Used", "Available", "Use%", "Mounted on")]
        for m in mounts:
            v = m.volume
            pct = f"{-(-v.used * 100 // v.capacity)}%" if v.capacity else "-"
            if human:
                rows.append(
                    (v.device, human_bytes(v.capacity), human_bytes(v.used), human_bytes(v.available), pct, m.path)
                )
            else:
                rows.append(
                    (v.device, str(v.capacity // 1024), str(v.used // 1024), str(v.available // 1024), pct, m.path)
                )
        w = [max(len(r[i]) for r in rows) for i in range(5)]
        out = ""
        for r in rows:
            out += f"{r[0]:<{w[0]}} {r[1]:>{w[1]}} {r[2]:>{w[2]}} {r[3]:>{w[3]}} {r[4]:>{w[4]}} {r[5]}\n"
        return Result(stdout=out)

    def _cmd_du(self, args: list[str], now: float) -> Result:
        human = any(a.startswith("-") and "h" in a for a in args)
        summary = any(a.startswith("-") and "s" in a for a in args)
        paths = [a for a in args if not a.startswith("-")] or ["."]
        files = self.all_files()
        out = Result()
        for p in paths:
            root = posixpath.normpath(p if p.startswith("/") else posixpath.join("/app", p))
            if not self.exists(root):
                out.stderr += f"du: cannot access '{p}': No such file or directory\n"
                out.code = 1
                continue
            if root in files:
                size = files[root].size
            else:
                prefix = root.rstrip("/") + "/"
                size = sum(f.size for n, f in files.items() if n.startswith(prefix)) + 4096
            if not summary:
                size = size
            shown = human_bytes(size) if human else str(-(-size // 1024))
            out.stdout += f"{shown}\t{p}\n"
        return out

    def _cmd_ls(self, args: list[str], now: float) -> Result:
        long = any(a.startswith("-") and "l" in a for a in args)
        human = any(a.startswith("-") and "h" in a for a in args)
        paths = [a for a in args if not a.startswith("-")] or ["/app"]
        files = self.all_files()
        dirs = self.dirs()
        out = Result()
        for p in paths:
            root = posixpath.normpath(p)
            if root in files:
                entries = [(posixpath.basename(root), files[root])]
            elif root in dirs:
                prefix = root.rstrip("/") + "/"
                names: dict[str, FileEntry | None] = {}
                for n, f in files.items():
                    if n.startswith(prefix):
                        rest = n[len(prefix) :]
                        if "/" in rest:
                            names.setdefault(rest.split("/", 1)[0], None)
                        else:
                            names[rest] = f
                for d in dirs:
                    if d.startswith(prefix) and "/" not in d[len(prefix) :] and d != root:
                        names.setdefault(d[len(prefix) :], None)
                entries = sorted(names.items())  # type: ignore[arg-type]
            else:
                out.stderr += f"ls: cannot access '{p}': No such file or directory\n"
                out.code = 2
                continue
            if len(paths) > 1:
                out.stdout += f"{p}:\n"
            if long:
                total = sum(-(-(f.size) // 1024) for _, f in entries if f is not None)
                out.stdout += f"total {human_bytes(total * 1024) if human else total}\n"
                for name, f in entries:
                    if f is None:
                        out.stdout += f"drwxr-xr-x 2 app app {'4.0K' if human else '4096':>6} {time.strftime('%b %d %H:%M', time.gmtime(now))} {name}\n"
                    else:
                        size = human_bytes(f.size) if human else str(f.size)
                        out.stdout += f"-rw-r--r-- 1 app app {size:>6} {time.strftime('%b %d %H:%M', time.gmtime(f.mtime))} {name}\n"
            else:
                out.stdout += "".join(name + "\n" for name, _ in entries)
        return out

    def _cmd_cat(self, args: list[str], now: float) -> Result:
        files = self.all_files()
        out = Result()
        for p in args:
            if p in files:
                out.stdout += f"[{human_bytes(files[p].size)} of log data]\n"
            elif p == "/etc/hostname":
                out.stdout += self.hostname + "\n"
            else:
                out.stderr += f"cat: {p}: No such file or directory\n"
                out.code = 1
        return out

    def _cmd_rm(self, args: list[str], now: float) -> Result:
        recursive = any(a.startswith("-") and ("r" in a or "R" in a) for a in args)
        force = any(a.startswith("-") and "f" in a for a in args)
        targets = [a for a in args if not a.startswith("-")]
        out = Result()
        if not targets:
            return Result(stderr="rm: missing operand\n", code=1)
        for t in targets:
            path = posixpath.normpath(t)
            m = self.mount_for(path)
            files = m.volume.files
            if path in self.all_files():
                self.mount_for(path).volume.files.pop(path, None)
                continue
            if path in self.dirs():
                if not recursive:
                    out.stderr += f"rm: cannot remove '{t}': Is a directory\n"
                    out.code = 1
                    continue
                if any(path == mp.path for mp in self.mounts):
                    # removing a mount point's contents works; the mount point itself is busy
                    pass
                prefix = path.rstrip("/") + "/"
                for mm in self.mounts:
                    for n in [n for n in mm.volume.files if n.startswith(prefix) and self.mount_for(n) is mm]:
                        del mm.volume.files[n]
                if any(path == mp.path for mp in self.mounts) or path in ("/", "/tmp", "/var", "/var/log"):
                    out.stderr += f"rm: cannot remove '{t}': Device or resource busy\n"
                    out.code = 1
                continue
            del files  # not found
            if not force:
                out.stderr += f"rm: cannot remove '{t}': No such file or directory\n"
                out.code = 1
        return out

    def _cmd_find(self, args: list[str], now: float) -> Result:
        roots: list[str] = []
        i = 0
        while i < len(args) and not args[i].startswith("-"):
            roots.append(args[i])
            i += 1
        roots = roots or ["."]
        ftype: str | None = None
        name: str | None = None
        mtime: str | None = None
        mmin: str | None = None
        size: str | None = None
        delete = False
        maxdepth: int | None = None
        while i < len(args):
            a = args[i]
            val = args[i + 1] if i + 1 < len(args) else None
            if a in ("-type", "-name", "-iname", "-mtime", "-mmin", "-size", "-maxdepth") and val is None:
                return Result(stderr=f"find: missing argument to `{a}'\n", code=1)
            if a == "-type":
                ftype = val
                i += 2
            elif a in ("-name", "-iname"):
                name = val if a == "-name" else (val or "").lower()
                i += 2
            elif a == "-mtime":
                mtime = val
                i += 2
            elif a == "-mmin":
                mmin = val
                i += 2
            elif a == "-size":
                size = val
                i += 2
            elif a == "-maxdepth":
                maxdepth = int(val or "0")
                i += 2
            elif a == "-delete":
                delete = True
                i += 1
            elif a in ("-print", "-xdev"):
                i += 1
            else:
                return Result(stderr=f"find: unknown predicate `{a}'\n", code=1)
        files = self.all_files()
        out = Result()
        for root in roots:
            r = posixpath.normpath(root)
            if not self.exists(r):
                out.stderr += f"find: '{root}': No such file or directory\n"
                out.code = 1
                continue
            prefix = r.rstrip("/") + "/"
            hits = []
            for path, f in sorted(files.items()):
                if not (path.startswith(prefix) or path == r):
                    continue
                if maxdepth is not None and path[len(prefix) :].count("/") + 1 > maxdepth:
                    continue
                if ftype not in (None, "f"):
                    continue
                base = posixpath.basename(path)
                if name is not None and not fnmatch.fnmatchcase(base.lower() if args.count("-iname") else base, name):
                    continue
                if mtime is not None and not _cmp_age(int((now - f.mtime) // 86400), mtime):
                    continue
                if mmin is not None and not _cmp_age(int((now - f.mtime) // 60), mmin):
                    continue
                if size is not None and not _cmp_size(f.size, size):
                    continue
                hits.append(path)
            for path in hits:
                if delete:
                    self.mount_for(path).volume.files.pop(path, None)
                else:
                    out.stdout += path + "\n"
        return out


def _cmp_age(age: int, spec: str) -> bool:
    if spec.startswith("+"):
        return age > int(spec[1:])
    if spec.startswith("-"):
        return age < int(spec[1:])
    return age == int(spec)


def _cmp_size(size: int, spec: str) -> bool:
    sign = spec[0] if spec[0] in "+-" else ""
    body = spec.lstrip("+-")
    unit = {"k": 1024, "M": MiB, "G": GiB, "c": 1}.get(body[-1], 512)
    n = int(body.rstrip("kMGc")) * unit
    if sign == "+":
        return size > n
    if sign == "-":
        return size < n
    return size == n


def _count_arg(args: list[str], default: int) -> int:
    for i, a in enumerate(args):
        if a == "-n" and i + 1 < len(args):
            return int(args[i + 1])
        if a.startswith("-n") and a[2:].isdigit():
            return int(a[2:])
        if a.startswith("-") and a[1:].isdigit():
            return int(a[1:])
    return default


def _no_count(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-n":
            skip = True
            continue
        if a.startswith("-"):
            continue
        out.append(a)
    return out
