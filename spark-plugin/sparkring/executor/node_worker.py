"""The Node process a Spark task starts (the training runtime, or a search agent): spawned in its
own process group and tied to the task, so it dies with it; JSON lines to it on stdin and from it
on the fd SPARKRING_CONTROL_FD (src/runtime/control.ts); its output in its log."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from typing import IO, Any, Optional

from sparkring.error_codes import RUNTIME_MISSING, WORKER_EXIT
from sparkring.failures import SparkringWorkerError, WorkerFailure, known, lost_peer
from sparkring.executor.gpus import visible_devices
from sparkring.driver.lost import exit_description
from sparkring.executor.tf_libraries import tensorflow_env

LOG_TAIL_LINES = 100


def tied_to_this_process(command: list[str]) -> list[str]:
    """`command` under util-linux's `setpriv --pdeathsig SIGKILL` where it exists: the kernel kills the
    Node process when this Python worker dies, however it dies, even when the Node process is
    stopped (SIGSTOP) and could not act on its closed control pipe."""
    setpriv = shutil.which("setpriv")
    if sys.platform != "linux" or setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "SIGKILL", "--", *command]


def spawn_node(command: list[str], env: dict[str, str], control_w: int, fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """`command` tied to this process, in a session of its own, with the write end of its control
    pipe (and `fds`) passed on, stdin a pipe and its stdout and stderr together on one pipe."""
    return subprocess.Popen(
        tied_to_this_process(command),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(control_w, *fds),
        env=env,
        start_new_session=True,
    )


class NodeWorker:
    """A Node process (the training runtime, or a search agent) with its control pipe (fd
    SPARKRING_CONTROL_FD) and its log."""

    def __init__(
        self,
        node: str,
        script: str,
        rank: int,
        gpus: list[str],
        log_path: str,
        host: Optional[str] = None,
        cpus: int = 1,
        fds: tuple[int, ...] = (),
    ) -> None:
        """`fds`: descriptors the Node process inherits under the same numbers (the partition's memfd)."""
        self.rank = rank
        # The executor's host as Spark names it, for the line that says where a worker died.
        self.host = host or socket.gethostname()
        # What the worker last said it was doing (its control `phase` messages; src/runtime/phase.ts).
        self.phase = "start"
        control_r, control_w = os.pipe()
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = visible_devices(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
        env.update(tensorflow_env(cpus, os.environ))
        env["SPARKRING_CONTROL_FD"] = str(control_w)
        # Which worker this is, for tools that look at the processes (torchrun's RANK, by another name).
        env["SPARKRING_RANK"] = str(rank)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self._log = open(log_path, "ab", buffering=0)
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        try:
            self.proc = spawn_node([node, script], env, control_w, fds)
        except FileNotFoundError as e:
            os.close(control_r)
            os.close(control_w)
            self._log.close()
            raise SparkringWorkerError(
                WorkerFailure(
                    rank,
                    f"Node not found on this executor ({node}): install Node 20 on the nodes, or ship it with --ship-node",
                    code=RUNTIME_MISSING,
                )
            ) from e
        os.close(control_w)
        self.control: IO[bytes] = os.fdopen(control_r, "rb")
        self._pump = threading.Thread(target=self._pump_output, daemon=True)
        self._pump.start()

    def _pump_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._log.write(raw)
            self.tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next control message but `phase` (kept as self.phase); a worker error or exit becomes
        SparkringWorkerError."""
        while True:
            line = self.control.readline()
            if not line:
                code = self.proc.wait(timeout=30)
                self._pump.join(timeout=5)
                raise SparkringWorkerError(
                    WorkerFailure(
                        self.rank,
                        exit_description(code, self.proc.pid, self.host),
                        "",
                        self.log_tail(),
                        WORKER_EXIT,
                        host=self.host,
                        phase=self.phase,
                    )
                )
            msg: dict[str, Any] = json.loads(line)
            if msg.get("type") != "phase":
                break
            self.phase = str(msg.get("phase"))
        if msg.get("type") == "error":
            self.proc.wait(timeout=30)
            self._pump.join(timeout=5)
            raise SparkringWorkerError(
                WorkerFailure(
                    self.rank,
                    str(msg.get("message")),
                    str(msg.get("stack", "")),
                    self.log_tail(),
                    known(msg.get("code")),
                    lost_peer(msg.get("lostPeer")),
                    host=self.host,
                    phase=str(msg.get("phase") or self.phase),
                )
            )
        return msg

    def log_tail(self) -> str:
        return "\n".join(self.tail)

    def stop(self) -> None:
        """Ends the whole process group: first politely, then for good."""
        try:
            self.control.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        self._log.close()
