"""Runs one pod's container as a local process and reports its status, as kubelet would.

See node_agent.py for the conventions (pod IPs, state directory, environment, mount paths).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from kube_api import ApiError, Kube, log, now_rfc3339
from pod_spec import LaunchPlan, NotReady, PodSpecResolver

# Kubelet's restart back-off doubles up to 5 minutes; tests want restarts sooner, so the first
# delay is an agent option and the cap is lower. A container that ran this long resets it.
_BACKOFF_MAX_SECONDS = 60
_BACKOFF_RESET_SECONDS = 600
_NOT_READY_RETRY_SECONDS = 1
# When the agent stops, its processes get SIGTERM and this long before SIGKILL.
AGENT_STOP_GRACE_SECONDS = 10


@dataclass
class WorkerContext:
    """What every pod worker shares with the agent."""

    kube: Kube
    resolver: PodSpecResolver
    state_dir: str
    allocate_ip: Callable[[], str]
    restart_backoff: float
    on_done: Callable[[str], None]  # called with the pod's uid when its worker ends


class Probe:
    """One readiness or liveness probe of a running container (httpGet, tcpSocket or exec)."""

    def __init__(self, kind: str, spec: dict, container: dict, pod_ip: str, plan: LaunchPlan):
        self.kind, self._spec, self._container = kind, spec, container
        self._pod_ip, self._plan = pod_ip, plan
        self._period = max(1, spec.get("periodSeconds", 10))
        self._timeout = max(1, spec.get("timeoutSeconds", 1))
        self._success_threshold = max(1, spec.get("successThreshold", 1))
        self._failure_threshold = max(1, spec.get("failureThreshold", 3))
        self.next_due = time.monotonic() + spec.get("initialDelaySeconds", 0)
        self._successes = self._failures = 0
        self.passing = kind == "liveness"  # readiness starts false, liveness true

    def run(self) -> None:
        """Probes once and updates `passing` after enough consecutive results."""
        self.next_due = time.monotonic() + self._period
        if self._check():
            self._successes, self._failures = self._successes + 1, 0
            if self._successes >= self._success_threshold:
                self.passing = True
        else:
            self._successes, self._failures = 0, self._failures + 1
            if self._failures >= self._failure_threshold:
                self.passing = False

    def _port(self, port: int | str) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for declared in self._container.get("ports", []):
            if declared.get("name") == port:
                return declared["containerPort"]
        raise ValueError(f"container has no port named {port!r}")

    def _check(self) -> bool:
        try:
            if "httpGet" in self._spec:
                return self._http_get(self._spec["httpGet"])
            if "tcpSocket" in self._spec:
                action = self._spec["tcpSocket"]
                with socket.create_connection((action.get("host") or self._pod_ip,
                                               self._port(action["port"])), self._timeout):
                    return True
            if "exec" in self._spec:
                argv = [self._plan.mapper.map(word) for word in self._spec["exec"]["command"]]
                argv[0] = shutil.which(argv[0], path=self._plan.env.get("PATH")) or argv[0]
                return subprocess.run(argv, env=self._plan.env, cwd=self._plan.cwd,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL,
                                      timeout=self._timeout).returncode == 0
            return True  # grpc probes are not played: they always pass
        except (OSError, ValueError, subprocess.SubprocessError, http.client.HTTPException):
            return False

    def _http_get(self, action: dict) -> bool:
        host, port = action.get("host") or self._pod_ip, self._port(action["port"])
        if action.get("scheme", "HTTP").upper() == "HTTPS":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=ssl._create_unverified_context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
        headers = {"User-Agent": "kube-probe/teatree-test"}
        headers.update({h["name"]: h["value"] for h in action.get("httpHeaders", [])})
        try:
            connection.request("GET", action.get("path", "/"), headers=headers)
            return 200 <= connection.getresponse().status < 400
        finally:
            connection.close()


class PodWorker:
    """Owns one pod bound to this node: its process, probes, status reports and deletion.

    The agent's watch thread calls `update()` and `gone()`, the agent's shutdown `shutdown()`;
    all else runs on the worker's own thread, started by `start()`. It ends when the pod is
    deleted (or the agent stops), after stopping the process.
    """

    def __init__(self, context: WorkerContext, pod: dict):
        self._ctx = context
        meta = pod["metadata"]
        self.uid, self._namespace, self._name = meta["uid"], meta["namespace"], meta["name"]
        self._container = pod["spec"]["containers"][0]
        self._dir = os.path.join(context.state_dir, "pods", f"{self._namespace}_{self._name}")
        self._status_path = f"/api/v1/namespaces/{self._namespace}/pods/{self._name}/status"
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"pod {self._namespace}/{self._name}")
        self._cond = threading.Condition()
        # State below is protected by _cond.
        self._pod = pod
        self._gone = False       # the pod no longer exists in the API
        self._shutting = False   # the agent is stopping
        # State below belongs to the worker thread.
        self._proc: subprocess.Popen | None = None
        self._pod_ip = ""
        self._start_time = now_rfc3339()
        self._phase = "Pending"
        self._state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self._last_state: dict = {}
        self._restarts = 0
        self._ready = False
        self._transitions: dict[str, tuple[str, str]] = {}

    @property
    def name(self) -> str:
        return f"{self._namespace}/{self._name}"

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def update(self, pod: dict) -> None:
        with self._cond:
            self._pod = pod
            self._cond.notify_all()

    def gone(self) -> None:
        with self._cond:
            self._gone = True
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._shutting = True
            self._cond.notify_all()

    def kill_now(self) -> None:
        """Last resort at agent exit: SIGKILL the process group, from any thread."""
        proc = self._proc
        if proc is not None and proc.poll() is None:  # never signal a reaped (reusable) pid
            _signal_group(proc, signal.SIGKILL)

    # --- Worker thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._prepare_dir()
            self._pod_ip = self._ctx.allocate_ip()
            self._lifecycle()
        except Exception:  # noqa: BLE001 - one pod's failure must not stop the agent
            log(f"pod {self.name}: worker failed:\n{traceback.format_exc()}")
            self.kill_now()
        finally:
            self._ctx.on_done(self.uid)

    def _prepare_dir(self) -> None:
        """A fresh directory per pod (uid): a new pod of the same name starts empty."""
        uid_file = os.path.join(self._dir, "uid")
        if os.path.exists(self._dir) and _read(uid_file) != self.uid:
            shutil.rmtree(self._dir, ignore_errors=True)
        os.makedirs(self._dir, exist_ok=True)
        with open(uid_file, "w", encoding="utf-8") as out:
            out.write(self.uid)

    def _lifecycle(self) -> None:
        backoff = self._ctx.restart_backoff
        while True:
            plan = self._wait_for_plan()
            if plan is None:
                break
            started = time.monotonic()
            outcome = self._supervise(plan) if self._start(plan) else "exited"
            if outcome != "exited":
                break
            exit_code = self._state["terminated"]["exitCode"]
            policy = self._pod_snapshot()["spec"].get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and exit_code == 0):
                self._phase = "Succeeded" if exit_code == 0 else "Failed"
                self._report()
                self._wait(None)  # until deleted
                break
            if time.monotonic() - started > _BACKOFF_RESET_SECONDS:
                backoff = self._ctx.restart_backoff
            self._last_state, self._state = self._state, {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {backoff:g}s restarting failed container"}}
            self._report()
            if self._wait(backoff):
                break
            backoff = min(backoff * 2, _BACKOFF_MAX_SECONDS)
            self._restarts += 1
        self._stop_and_delete()

    def _pod_snapshot(self) -> dict:
        with self._cond:
            return self._pod

    def _stopping(self) -> bool:
        """Called with _cond held."""
        return self._gone or self._shutting or "deletionTimestamp" in self._pod["metadata"]

    def _wait(self, seconds: float | None, until: Callable[[], bool] = lambda: False) -> bool:
        """Waits up to `seconds` (None: forever) or until the pod is stopping or `until()`;
        returns whether the pod is stopping."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping() or until(), seconds)
            return self._stopping()

    def _wait_for_plan(self) -> LaunchPlan | None:
        """Resolves the container's launch, retrying while it cannot start (reporting why)."""
        reported = None
        while True:
            with self._cond:
                if self._stopping():
                    return None
                pod = self._pod
            try:
                return self._ctx.resolver.resolve(pod, self._pod_ip, self._dir)
            except NotReady as error:
                not_ready = error
            except Exception as error:  # noqa: BLE001 - a defect here fails this pod only
                not_ready = NotReady("CreateContainerConfigError", f"test node agent: {error!r}")
                if reported != str(not_ready):
                    log(f"pod {self.name}: resolving failed:\n{traceback.format_exc()}")
            if reported != str(not_ready):
                reported = str(not_ready)
                log(f"pod {self.name}: waiting: {not_ready}")
                self._state = {"waiting": {"reason": not_ready.reason,
                                           "message": not_ready.message}}
                self._report()
            if self._wait(_NOT_READY_RETRY_SECONDS):
                return None

    def _start(self, plan: LaunchPlan) -> bool:
        """Starts the process; on failure records it as exited (code 128) and returns False."""
        started_at = now_rfc3339()
        try:
            with open(os.path.join(self._dir, "container.log"), "ab") as output:
                self._proc = subprocess.Popen(
                    plan.argv, env=plan.env, cwd=plan.cwd, stdin=subprocess.DEVNULL,
                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as error:
            log(f"pod {self.name}: cannot start {plan.argv}: {error}")
            self._proc = None
            self._state = {"terminated": {"exitCode": 128, "reason": "StartError",
                                          "message": str(error), "startedAt": started_at,
                                          "finishedAt": now_rfc3339()}}
            return False
        with open(os.path.join(self._dir, "pid"), "w", encoding="utf-8") as out:
            out.write(f"{self._proc.pid}\n")
        threading.Thread(target=self._reap, args=(self._proc,), daemon=True).start()
        log(f"pod {self.name}: started pid {self._proc.pid} on {self._pod_ip}: {plan.argv}")
        self._phase = "Running"
        self._state = {"running": {"startedAt": started_at}}
        self._ready = "readinessProbe" not in self._container
        self._report()
        return True

    def _reap(self, proc: subprocess.Popen) -> None:
        proc.wait()
        with self._cond:
            self._cond.notify_all()

    def _supervise(self, plan: LaunchPlan) -> str:
        """Probes the running process until it exits ("exited") or the pod stops ("stopping")."""
        probes = [Probe(kind, self._container[f"{kind}Probe"], self._container, self._pod_ip, plan)
                  for kind in ("readiness", "liveness") if f"{kind}Probe" in self._container]
        while True:
            if self._proc.poll() is not None:
                self._record_exit()
                return "exited"
            for probe in probes:
                if time.monotonic() >= probe.next_due:
                    probe.run()
            live = all(p.passing for p in probes if p.kind == "liveness")
            if not live:
                log(f"pod {self.name}: liveness probe failed, killing pid {self._proc.pid}")
                _signal_group(self._proc, signal.SIGKILL)
                self._proc.wait()
                self._record_exit()
                return "exited"
            ready = all(p.passing for p in probes if p.kind == "readiness")
            if ready != self._ready:
                self._ready = ready
                log(f"pod {self.name}: {'ready' if ready else 'not ready'}")
                self._report()
            next_due = min([p.next_due for p in probes], default=time.monotonic() + 5)
            if self._wait(max(0.05, next_due - time.monotonic()),
                          until=lambda: self._proc.poll() is not None):
                return "stopping"

    def _record_exit(self) -> None:
        code = self._proc.returncode
        exit_code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as runtimes
        _signal_group(self._proc, signal.SIGKILL)  # a container's other processes die with it
        _remove(os.path.join(self._dir, "pid"))
        log(f"pod {self.name}: pid {self._proc.pid} exited with code {exit_code}")
        self._ready = False
        self._state = {"terminated": {
            "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": self._state.get("running", {}).get("startedAt", now_rfc3339()),
            "finishedAt": now_rfc3339(), "containerID": self._container_id()}}

    def _stop_and_delete(self) -> None:
        """Stops the process (SIGTERM, the grace period, SIGKILL) and deletes the pod."""
        with self._cond:
            pod, gone, shutting = self._pod, self._gone, self._shutting
        if self._proc is not None and self._proc.poll() is None:
            if gone:
                grace = 0
            elif shutting:
                grace = AGENT_STOP_GRACE_SECONDS
            else:
                grace = pod["metadata"].get("deletionGracePeriodSeconds",
                                            pod["spec"].get("terminationGracePeriodSeconds", 30))
            log(f"pod {self.name}: stopping pid {self._proc.pid} (grace {grace} s)")
            # As a container runtime: SIGTERM to the main process only, SIGKILL to all.
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"pod {self.name}: pid {self._proc.pid} still running: SIGKILL")
            _signal_group(self._proc, signal.SIGKILL)
            self._proc.wait()
            _remove(os.path.join(self._dir, "pid"))
        if gone or shutting:
            return
        delete_pod(self._ctx.kube, self._pod_snapshot())

    # --- Status ---------------------------------------------------------------------------

    def _container_id(self) -> str:
        return f"teatree-test://{self._proc.pid}" if self._proc is not None else ""

    def _condition(self, kind: str, true: bool, reason: str = "", message: str = "") -> dict:
        status = "True" if true else "False"
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != status:
            self._transitions[kind] = (status, now_rfc3339())
        condition = {"type": kind, "status": status, "lastProbeTime": None,
                     "lastTransitionTime": self._transitions[kind][1]}
        if not true and reason:
            condition.update(reason=reason, message=message)
        return condition

    def _report(self) -> None:
        """Replaces the pod's status with what the worker knows (a merge patch)."""
        finished = self._phase in ("Succeeded", "Failed")
        reason = "PodCompleted" if finished else "ContainersNotReady"
        message = "" if finished else f"containers with unready status: [{self._container['name']}]"
        container = {"name": self._container["name"], "image": self._container.get("image", ""),
                     "imageID": "", "ready": self._ready, "started": "running" in self._state,
                     "restartCount": self._restarts, "state": self._state,
                     "lastState": self._last_state}
        if "running" in self._state:
            container["containerID"] = self._container_id()
        status = {
            "phase": self._phase, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self._pod_ip, "podIPs": [{"ip": self._pod_ip}], "startTime": self._start_time,
            "conditions": [
                self._condition("PodReadyToStartContainers", True),
                self._condition("Initialized", True),
                self._condition("ContainersReady", self._ready, reason, message),
                self._condition("Ready", self._ready, reason, message),
                self._condition("PodScheduled", True)],
            "containerStatuses": [container]}
        try:
            self._ctx.kube.merge_patch(self._status_path, {"status": status})
        except (ApiError, OSError) as error:
            log(f"pod {self.name}: status update failed: {error}")


def delete_pod(kube: Kube, pod: dict) -> None:
    """Finishes a pod's deletion (grace 0, only this uid): without a kubelet, nobody else
    completes what the grace period began."""
    meta = pod["metadata"]
    name = f"{meta['namespace']}/{meta['name']}"
    options = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "preconditions": {"uid": meta["uid"]}}
    for attempt in range(3):
        try:
            kube.call("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                      options)
            log(f"pod {name}: deleted")
            return
        except ApiError as error:
            if error.status in (404, 409):  # already gone, or a new pod of that name
                return
            log(f"pod {name}: delete failed (attempt {attempt + 1}): {error}")
        except OSError as error:
            log(f"pod {name}: delete failed (attempt {attempt + 1}): {error}")
        time.sleep(1)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signals the process group the container runs in (it leads its own session)."""
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as source:
            return source.read().strip()
    except OSError:
        return None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
