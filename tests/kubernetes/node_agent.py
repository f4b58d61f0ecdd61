#!/usr/bin/env python3
"""A test node agent: plays the kubelet of one node, running pods as local processes.

For tests of Teatree's Kubernetes launcher against a real API server (scripts/kubernetes-testenv
starts it), where there is no kubelet, no container runtime and no controller-manager:

    node_agent.py --kubeconfig FILE --state DIR [--node-name teatree-test-node]
                  [--entrypoint NAME=PATH ...] [--default-entrypoint PATH]
                  [--restart-backoff SECONDS] [--pod-ip-prefix 127.0.1]
    (or --server URL --token TOKEN --ca FILE instead of --kubeconfig)

The code is in this file (node and claims), pod_worker.py (one pod's process, probes, status)
and pod_spec.py (command, environment, volumes), over kube_api.py (the API client).

What it does
  * Registers Node NAME (Ready; capacity cpu 32, memory 128Gi, pods 110) and heartbeats it.
  * Binds every unbound pod (default scheduler, no scheduling gates) to the node.
  * Runs the first container of each pod bound to the node as a local process (init and other
    containers are ignored), reports its status (phase, pod IP, conditions, container status,
    readiness from its readinessProbe), kills it (SIGKILL) when its livenessProbe fails,
    restarts it per restartPolicy (back-off from --restart-backoff, default 1 s, doubling to
    60 s), and on deletion sends SIGTERM to the process, waits the grace period, sends SIGKILL
    to its process group and deletes the pod (grace 0). Probes: httpGet (port number or name),
    tcpSocket and exec, polled every periodSeconds (at least 1 s); startupProbe and lifecycle
    hooks are not played. Each process leads its own process group, which dies with it.
  * Binds each Pending PersistentVolumeClaim to a new hostPath PersistentVolume `pvc-<uid>`
    (capacity = the request, the claim's storage class and access modes), and follows
    expansions: a larger request is reflected in the PV and the claim's status capacity.
    Storage classes are not consulted (no WaitForFirstConsumer).
  * On SIGTERM or SIGINT: stops all its processes (SIGTERM, SIGKILL after 10 s) and exits.
    It leaves the API objects as they are.

Conventions a test relies on
  * Pod IPs: 127.0.1.N, N = 1, 2, ... in the order pods come to the node (then 127.0.2.1, ...):
    Linux answers on every 127/8 address, so a pod's server can bind its own IP. Agents of
    separate environments hand out the same IPs; give each a different --pod-ip-prefix when
    they run at the same time. The host IP is 127.0.0.1.
  * State directory (--state STATE):
      STATE/pods/<namespace>_<pod>/               the pod's working directory and HOME
      STATE/pods/<namespace>_<pod>/container.log  stdout and stderr (appended across restarts)
      STATE/pods/<namespace>_<pod>/pid            the running process's pid (kill -9 it to
                                                  simulate a crash; removed when it exits)
      STATE/pods/<namespace>_<pod>/<volume>/      emptyDir, secret, configMap, projected and
                                                  downwardAPI volumes (files from API objects
                                                  are rewritten at each container start)
      STATE/volumes/<namespace>/<claim>/          a PersistentVolumeClaim's data (kept after
                                                  the pod and the claim are deleted)
    A hostPath volume is its own path. A pod with a PersistentVolumeClaim volume waits
    (ContainerCreating) until the claim is Bound. A projected serviceAccountToken is a real
    token from the TokenRequest API. The pod directory is emptied when a new pod (uid) of the
    same name comes.
  * Command: the container's command + args, with $(VAR) expanded from its environment as
    kubelet does. A command[0] that is not an executable path on this machine is looked up as
    an --entrypoint NAME (the full value, then its basename), then by basename on PATH. A
    container without a command runs its image's entrypoint, from --entrypoint IMAGE=PATH (the
    image as written, without its tag or digest, or its last path component) or else
    --default-entrypoint; the container's args follow it.
  * Mount paths: processes see no container filesystem, so each volumeMount's mountPath is
    mapped to its local directory (with subPath/subPathExpr appended): in the expanded command,
    args and container env values, every occurrence of a mountPath as a whole path - at the
    start or after a character that cannot be part of a path such as `=`, `:`, `,` or a
    space, and followed by `/`, the end or such a character - is replaced by the local
    directory; the longest mountPath wins. The working directory is the pod directory.
  * Environment: a clean one - PATH (the agent's), HOME (the pod directory), HOSTNAME (the pod
    name), KUBERNETES_SERVICE_HOST/PORT (the API server, so in-cluster clients reach it) - then
    envFrom (configMapRef/secretRef, with prefix) and env (value; valueFrom fieldRef, including
    status.podIP and metadata.labels['k']; resourceFieldRef with divisor, a missing limit being
    the node's allocatable; secretKeyRef; configMapKeyRef). Missing optional references are
    skipped; a missing required one leaves the pod Pending with the container waiting in
    CreateContainerConfigError (retried every second).
  * Resources are not enforced (no cgroups). So that a program can be tested on what it would
    derive from its limits, the agent exports TEATREE_TEST_CPU_LIMIT (millicores) and
    TEATREE_TEST_MEMORY_LIMIT (bytes) when the container sets limits.cpu / limits.memory.
  * Exit codes: a process killed by signal N reports exit code 128 + N (kill -9: 137), as
    container runtimes do; restartPolicy Never then makes the pod Failed (Succeeded on 0).

It logs what it does to stderr, with timestamps. Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kube_api import ApiError, Kube, log, now_rfc3339, parse_quantity, run_informer  # noqa: E402
from pod_spec import NodeResources, PodSpecResolver  # noqa: E402
from pod_worker import AGENT_STOP_GRACE_SECONDS, PodWorker, WorkerContext, delete_pod  # noqa: E402

NODE_CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "100Gi"}
HEARTBEAT_SECONDS = 10


class NodeAgent:
    """Registers the node and dispatches pod and claim events. Call run() once (main thread)."""

    def __init__(self, kube: Kube, options: argparse.Namespace):
        self._kube = kube
        self._node = options.node_name
        self._ip_prefix = options.pod_ip_prefix
        self.stop = threading.Event()
        self._started = now_rfc3339()  # the Ready condition's lastTransitionTime
        resources = NodeResources(cpu=parse_quantity(NODE_CAPACITY["cpu"]),
                                  memory=parse_quantity(NODE_CAPACITY["memory"]))
        self._resolver = PodSpecResolver(kube, options.state, resources,
                                         options.entrypoints, options.default_entrypoint)
        self._context = WorkerContext(kube=kube, resolver=self._resolver, state_dir=options.state,
                                      allocate_ip=self._allocate_ip,
                                      restart_backoff=options.restart_backoff,
                                      on_done=self._forget)
        self._lock = threading.Lock()
        # State below is protected by _lock.
        self._workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()  # uids whose worker ended, until their DELETED event
        self._ips_handed_out = 0

    def run(self) -> None:
        self._register_node()
        threads = [
            threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat"),
            threading.Thread(target=run_informer, daemon=True, name="pods", args=(
                self._kube, "/api/v1/pods", self._on_pod, self._on_pod_list, self.stop)),
            threading.Thread(target=run_informer, daemon=True, name="claims", args=(
                self._kube, "/api/v1/persistentvolumeclaims", self._on_claim,
                self._on_claim_list, self.stop)),
        ]
        for thread in threads:
            thread.start()
        self.stop.wait()
        self._shutdown()

    # --- Node -----------------------------------------------------------------------------

    def _node_status(self) -> dict:
        now = now_rfc3339()

        def condition(kind: str, status: str, reason: str, message: str) -> dict:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": self._started}

        return {"conditions": [
            condition("Ready", "True", "KubeletReady", "the test node agent is running"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", ""),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", ""),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "")]}

    def _register_node(self) -> None:
        """Creates the node (or takes over an existing one); retries until the API answers."""
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        while not self.stop.is_set():
            try:
                version = self._kube.get("/version")["gitVersion"]
                status = self._node_status()
                status.update(
                    capacity=NODE_CAPACITY, allocatable=NODE_CAPACITY,
                    addresses=[{"type": "InternalIP", "address": "127.0.0.1"},
                               {"type": "Hostname", "address": self._node}],
                    nodeInfo={"kubeletVersion": version, "operatingSystem": "linux",
                              "architecture": arch, "kernelVersion": platform.release(),
                              "osImage": "teatree test node agent",
                              "containerRuntimeVersion": "teatree-test://1", "machineID": "",
                              "systemUUID": "", "bootID": "", "kubeProxyVersion": ""})
                node = {"apiVersion": "v1", "kind": "Node", "metadata": {
                    "name": self._node, "labels": {
                        "kubernetes.io/hostname": self._node, "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": arch}}, "spec": {}}
                try:
                    self._kube.call("POST", "/api/v1/nodes", node)
                    log(f"registered node {self._node}")
                except ApiError as error:
                    if error.status != 409:
                        raise
                    log(f"node {self._node} exists: taking it over")
                self._kube.merge_patch(f"/api/v1/nodes/{self._node}/status", {"status": status})
                return
            except (ApiError, OSError) as error:
                log(f"cannot register node {self._node} yet: {error}")
                self.stop.wait(1)

    def _heartbeat(self) -> None:
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                self._kube.merge_patch(f"/api/v1/nodes/{self._node}/status",
                                       {"status": self._node_status()})
            except ApiError as error:
                log(f"node heartbeat failed: {error}")
                if error.status == 404:
                    self._register_node()
            except OSError as error:
                log(f"node heartbeat failed: {error}")

    # --- Pods -----------------------------------------------------------------------------

    def _allocate_ip(self) -> str:
        with self._lock:
            n = self._ips_handed_out
            self._ips_handed_out += 1
        third, fourth = divmod(n, 254)
        prefix, _, base = self._ip_prefix.rpartition(".")
        return f"{prefix}.{int(base) + third}.{fourth + 1}"

    def _forget(self, uid: str) -> None:
        with self._lock:
            self._workers.pop(uid, None)
            self._finished.add(uid)

    def _on_pod_list(self, pods: list[dict]) -> None:
        """A full listing: anything not in it was deleted while the watch was down."""
        present = {pod["metadata"]["uid"] for pod in pods}
        with self._lock:
            vanished = [w for uid, w in self._workers.items() if uid not in present]
            self._finished &= present
        for worker in vanished:
            worker.gone()
        for pod in pods:
            self._on_pod("MODIFIED", pod)

    def _on_pod(self, event: str, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        if event == "DELETED":
            with self._lock:
                worker = self._workers.pop(uid, None)
                self._finished.discard(uid)
            if worker is not None:
                worker.gone()
            return
        if not spec.get("nodeName"):
            if (spec.get("schedulerName", "default-scheduler") == "default-scheduler"
                    and not spec.get("schedulingGates") and "deletionTimestamp" not in meta):
                self._bind(pod)
            return
        if spec["nodeName"] != self._node:
            return
        with self._lock:
            if uid in self._finished:
                return
            worker = self._workers.get(uid)
            if worker is None:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    # Finished before this agent started: nothing to run, only to delete.
                    if "deletionTimestamp" in meta:
                        delete_pod(self._kube, pod)
                    return
                worker = self._workers[uid] = PodWorker(self._context, pod)
                log(f"pod {worker.name}: assigned to this node")
                worker.start()
        worker.update(pod)

    def _bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": self._node}}
        try:
            self._kube.call(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding",
                binding)
            log(f"pod {meta['namespace']}/{meta['name']}: bound to {self._node}")
        except ApiError as error:
            if error.status != 409:  # 409: already bound
                log(f"pod {meta['namespace']}/{meta['name']}: binding failed: {error}")

    # --- Claims ---------------------------------------------------------------------------

    def _on_claim_list(self, claims: list[dict]) -> None:
        for claim in claims:
            self._on_claim("MODIFIED", claim)

    def _on_claim(self, event: str, claim: dict) -> None:
        if event == "DELETED" or "deletionTimestamp" in claim["metadata"]:
            return
        request = claim["spec"].get("resources", {}).get("requests", {}).get("storage")
        status = claim.get("status") or {}
        if request is None:
            return
        if status.get("phase") != "Bound":
            self._bind_claim(claim, request)
            return
        current = (status.get("capacity") or {}).get("storage")
        if current is None or parse_quantity(request) > parse_quantity(current):
            self._expand_claim(claim, request)

    def _claim_path(self, claim: dict) -> str:
        meta = claim["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/{meta['name']}"

    def _bind_claim(self, claim: dict, request: str) -> None:
        meta, spec = claim["metadata"], claim["spec"]
        directory = self._resolver.volume_dir(meta["namespace"], meta["name"])
        os.makedirs(directory, exist_ok=True)
        volume_name = spec.get("volumeName") or f"pvc-{meta['uid']}"
        volume = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {
            "name": volume_name,
            "annotations": {"pv.kubernetes.io/provisioned-by": "teatree-test-node-agent"}},
            "spec": {
                "capacity": {"storage": request},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": spec.get("storageClassName") or "",
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "hostPath": {"path": directory, "type": "DirectoryOrCreate"},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "namespace": meta["namespace"], "name": meta["name"],
                             "uid": meta["uid"]}}}
        try:
            self._kube.call("POST", "/api/v1/persistentvolumes", volume)
        except ApiError as error:
            if error.status != 409:
                raise
        self._kube.merge_patch(f"/api/v1/persistentvolumes/{volume_name}/status",
                               {"status": {"phase": "Bound"}})
        # The status first: a claim seen with its volume named but not Bound would be bound again.
        self._kube.merge_patch(self._claim_path(claim) + "/status", {"status": {
            "phase": "Bound", "accessModes": volume["spec"]["accessModes"],
            "capacity": {"storage": request}}})
        if not spec.get("volumeName"):
            # The one change of a claim's spec the API allows: naming its volume, once.
            self._kube.merge_patch(self._claim_path(claim), {
                "metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                             "pv.kubernetes.io/bound-by-controller": "yes"}},
                "spec": {"volumeName": volume_name}})
        log(f"claim {meta['namespace']}/{meta['name']}: bound to {volume_name} ({request}) "
            f"at {directory}")

    def _expand_claim(self, claim: dict, request: str) -> None:
        meta = claim["metadata"]
        volume_name = claim["spec"].get("volumeName")
        if volume_name:
            self._kube.merge_patch(f"/api/v1/persistentvolumes/{volume_name}",
                                   {"spec": {"capacity": {"storage": request}}})
        self._kube.merge_patch(self._claim_path(claim) + "/status",
                               {"status": {"capacity": {"storage": request}}})
        log(f"claim {meta['namespace']}/{meta['name']}: expanded to {request}")

    # --- Shutdown -------------------------------------------------------------------------

    def _shutdown(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
        log(f"stopping: {len(workers)} pod(s)")
        for worker in workers:
            worker.shutdown()
        deadline = time.monotonic() + AGENT_STOP_GRACE_SECONDS + 2
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            worker.kill_now()
        log("stopped")


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Test node agent: plays the kubelet of one node, running pods as local "
                    "processes (see the top of this file for its conventions).")
    parser.add_argument("--kubeconfig", help="kubeconfig with a server, CA and token")
    parser.add_argument("--server", help="API server URL (instead of --kubeconfig)")
    parser.add_argument("--token", help="bearer token (with --server)")
    parser.add_argument("--ca", help="CA certificate file (with --server)")
    parser.add_argument("--node-name", default="teatree-test-node")
    parser.add_argument("--state", required=True, help="state directory (pods/, volumes/)")
    parser.add_argument("--entrypoint", action="append", default=[], metavar="NAME=PATH",
                        help="program for an image (no command) or a command name; repeatable")
    parser.add_argument("--default-entrypoint", metavar="PATH",
                        help="program for images without an --entrypoint")
    parser.add_argument("--restart-backoff", type=float, default=1.0, metavar="SECONDS",
                        help="first restart delay (doubles up to 60 s)")
    parser.add_argument("--pod-ip-prefix", default="127.0.1", metavar="A.B.C",
                        help="pod IPs are A.B.C.1, A.B.C.2, ... (127/8 only)")
    options = parser.parse_args(argv)
    if not options.kubeconfig and not (options.server and options.token and options.ca):
        parser.error("give --kubeconfig, or --server, --token and --ca")
    if not options.pod_ip_prefix.startswith("127.") or options.pod_ip_prefix.count(".") != 2:
        parser.error(f"--pod-ip-prefix {options.pod_ip_prefix!r}: use three octets in 127/8")
    entrypoints = {}
    for mapping in options.entrypoint:
        name, sep, path = mapping.partition("=")
        if not sep or not name or not path:
            parser.error(f"--entrypoint {mapping!r}: use NAME=PATH")
        entrypoints[name] = os.path.abspath(path) if "/" in path else path  # else: on PATH
    options.entrypoints = entrypoints
    options.state = os.path.abspath(options.state)
    return options


def main(argv: list[str]) -> int:
    options = parse_options(argv)
    if options.kubeconfig:
        kube = Kube.from_kubeconfig(options.kubeconfig)
    else:
        with open(options.ca, encoding="utf-8") as ca:
            kube = Kube(options.server, options.token, ca.read())
    os.makedirs(options.state, exist_ok=True)
    agent = NodeAgent(kube, options)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: agent.stop.set())
    log(f"node {options.node_name} against {kube.server}, state in {options.state}")
    agent.run()
    return 0


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # Exit at once: the daemon threads may sit in a watch read, which delays a normal
    # interpreter shutdown by seconds, and they hold nothing that needs flushing.
    sys.stderr.flush()
    os._exit(status)
