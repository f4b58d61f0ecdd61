"""Turns a pod's first container into a local process launch, as the test node agent runs it.

The rules (command, environment, volumes, mount-path mapping) are described at the top of
node_agent.py. `PodSpecResolver.resolve()` either returns a `LaunchPlan` or raises `NotReady`
with the reason kubelet would show while the container cannot be started yet.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction

from kube_api import ApiError, Kube, parse_quantity


class NotReady(Exception):
    """The container cannot start yet; `reason` is its waiting reason (as kubelet reports)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class NodeResources:
    """The node's allocatable resources: what a limit defaults to, as kubelet does."""

    cpu: Fraction
    memory: Fraction


class MountPathMapper:
    """Replaces container mount paths by their local directories inside strings.

    A mount path matches where it appears as a whole path: at the start of the string or after
    a character that cannot be part of a path (such as `=`, `:`, `,` or a space), and followed
    by `/`, the end, or such a character. The longest mount path wins.
    """

    _PATH_CHAR = r"[\w.~/-]"

    def __init__(self, mounts: dict[str, str]):
        self._mounts = {path.rstrip("/"): local for path, local in mounts.items()
                        if path.rstrip("/")}
        alternatives = "|".join(re.escape(p) for p in sorted(self._mounts, key=len, reverse=True))
        self._pattern = (re.compile(
            rf"(?<!{self._PATH_CHAR})({alternatives})(?=/|$|(?!{self._PATH_CHAR}))")
            if alternatives else None)

    def map(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._mounts[match.group(1)], text)


@dataclass
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    mapper: MountPathMapper  # for exec probes


def expand_references(text: str, variables: dict[str, str]) -> str:
    """Expands $(VAR) as kubelet does: unknown references stay as written, $$ is a literal $."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2:end]
            out.append(variables.get(name, text[i:end + 1]))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class _Objects:
    """Secrets and ConfigMaps of one namespace, each read from the API at most once."""

    def __init__(self, kube: Kube, namespace: str):
        self._kube, self._namespace, self._cache = kube, namespace, {}

    def data(self, kind: str, name: str) -> dict[str, bytes] | None:
        """The decoded keys of Secret or ConfigMap `name`, or None when it does not exist."""
        if (kind, name) not in self._cache:
            resource = "secrets" if kind == "Secret" else "configmaps"
            obj = self._kube.get_or_none(f"/api/v1/namespaces/{self._namespace}/{resource}/{name}")
            self._cache[kind, name] = None if obj is None else _decoded(obj)
        return self._cache[kind, name]

    def key(self, kind: str, ref: dict) -> bytes | None:
        """A SecretKeyRef/ConfigMapKeyRef value; None if optional and missing; else NotReady."""
        data = self.data(kind, ref["name"])
        if data is not None and ref["key"] in data:
            return data[ref["key"]]
        if ref.get("optional"):
            return None
        missing = (f'{kind.lower()} "{ref["name"]}" not found' if data is None
                   else f'couldn\'t find key {ref["key"]} in {kind} {self._namespace}/{ref["name"]}')
        raise NotReady("CreateContainerConfigError", missing)


def _decoded(obj: dict) -> dict[str, bytes]:
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


class PodSpecResolver:
    """Resolves pods into launch plans. Thread-safe: it keeps no state between calls."""

    def __init__(self, kube: Kube, state_dir: str, node: NodeResources,
                 entrypoints: dict[str, str], default_entrypoint: str | None):
        self._kube = kube
        self._state_dir = state_dir
        self._node = node
        self._entrypoints = entrypoints
        self._default_entrypoint = default_entrypoint

    def volume_dir(self, namespace: str, claim: str) -> str:
        return os.path.join(self._state_dir, "volumes", namespace, claim)

    def resolve(self, pod: dict, pod_ip: str, pod_dir: str) -> LaunchPlan:
        container = pod["spec"]["containers"][0]
        objects = _Objects(self._kube, pod["metadata"]["namespace"])
        env = self._base_env(pod, container, pod_dir)
        container_env = self._container_env(pod, container, pod_ip, objects, env)
        env.update(container_env)  # unmapped first: subPathExpr expands from these values
        volumes = self._materialize_volumes(pod, pod_ip, pod_dir, objects)
        mapper = MountPathMapper(self._mounts(container, volumes, env))
        env.update({name: mapper.map(value) for name, value in container_env.items()})
        argv = [mapper.map(expand_references(word, env)) for word in container.get("command", [])]
        if argv:
            argv[0] = self._program(argv[0], env.get("PATH", ""))
        else:
            argv = [self._image_entrypoint(container.get("image", ""))]
        argv += [mapper.map(expand_references(word, env)) for word in container.get("args", [])]
        return LaunchPlan(argv=argv, env=env, cwd=pod_dir, mapper=mapper)

    # --- Environment ----------------------------------------------------------------------

    def _base_env(self, pod: dict, container: dict, pod_dir: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": pod_dir,
               "HOSTNAME": pod["metadata"]["name"]}
        host, _, port = self._kube.server.removeprefix("https://").partition(":")
        env.update(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port or "443")
        limits = (container.get("resources") or {}).get("limits") or {}
        if "cpu" in limits:
            env["TEATREE_TEST_CPU_LIMIT"] = str(math.ceil(parse_quantity(limits["cpu"]) * 1000))
        if "memory" in limits:
            env["TEATREE_TEST_MEMORY_LIMIT"] = str(math.ceil(parse_quantity(limits["memory"])))
        return env

    def _container_env(self, pod: dict, container: dict, pod_ip: str, objects: _Objects,
                       base: dict[str, str]) -> dict[str, str]:
        """envFrom, then env (later entries win); values expand references to earlier ones."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            kind, ref = (("Secret", source["secretRef"]) if "secretRef" in source
                         else ("ConfigMap", source["configMapRef"]))
            data = objects.data(kind, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise NotReady("CreateContainerConfigError", f'{kind.lower()} "{ref["name"]}" not found')
            for key, value in data.items():
                if "=" not in key:
                    env[source.get("prefix", "") + key] = value.decode(errors="replace")
        for var in container.get("env", []):
            if "valueFrom" not in var:
                env[var["name"]] = expand_references(var.get("value", ""), {**base, **env})
                continue
            value = self._value_from(pod, container, pod_ip, objects, var["valueFrom"])
            if value is not None:
                env[var["name"]] = value
        return env

    def _value_from(self, pod: dict, container: dict, pod_ip: str, objects: _Objects,
                    source: dict) -> str | None:
        if "fieldRef" in source:
            return self._field(pod, pod_ip, source["fieldRef"]["fieldPath"])
        if "resourceFieldRef" in source:
            return self._resource(pod, container, source["resourceFieldRef"])
        kind, ref = (("Secret", source["secretKeyRef"]) if "secretKeyRef" in source
                     else ("ConfigMap", source["configMapKeyRef"]))
        value = objects.key(kind, ref)
        return None if value is None else value.decode(errors="replace")

    def _field(self, pod: dict, pod_ip: str, path: str) -> str:
        meta, spec = pod["metadata"], pod["spec"]
        simple = {
            "metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"], "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": pod_ip, "status.podIPs": pod_ip,
            "status.hostIP": "127.0.0.1", "status.hostIPs": "127.0.0.1",
        }
        if path in simple:
            return simple[path]
        if match := re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path):
            return (meta.get(match.group(1)) or {}).get(match.group(2), "")
        if path in ("metadata.labels", "metadata.annotations"):
            items = sorted((meta.get(path.split(".")[1]) or {}).items())
            return "\n".join(f'{key}="{value}"' for key, value in items)
        raise NotReady("CreateContainerConfigError", f"unsupported fieldPath {path!r}")

    def _resource(self, pod: dict, container: dict, ref: dict) -> str:
        if ref.get("containerName"):
            container = next(c for c in pod["spec"]["containers"] if c["name"] == ref["containerName"])
        kind, _, name = ref["resource"].partition(".")
        resources = (container.get("resources") or {}).get(kind) or {}
        if name in resources:
            value = parse_quantity(resources[name])
        elif kind == "limits" and name in ("cpu", "memory"):
            value = getattr(self._node, name)
        else:
            value = Fraction(0)
        divisor = parse_quantity(ref.get("divisor") or "1") or 1  # the API shows unset as "0"
        return str(math.ceil(value / divisor))

    # --- Volumes and mounts ---------------------------------------------------------------

    def _materialize_volumes(self, pod: dict, pod_ip: str, pod_dir: str,
                             objects: _Objects) -> dict[str, str]:
        """Creates each volume's local directory; returns volume name -> directory."""
        dirs = {}
        for volume in pod["spec"].get("volumes", []):
            name, local = volume["name"], os.path.join(pod_dir, volume["name"])
            if "persistentVolumeClaim" in volume:
                local = self._claim_dir(pod, volume["persistentVolumeClaim"]["claimName"])
            elif "hostPath" in volume:
                local = volume["hostPath"]["path"]
                if not os.path.exists(local):
                    os.makedirs(local)
            elif "emptyDir" in volume:
                os.makedirs(local, exist_ok=True)
            else:
                # Files made from API objects are rewritten at each start, as kubelet updates
                # them. Other volume types (csi, nfs, ...) are left as empty directories.
                shutil.rmtree(local, ignore_errors=True)
                os.makedirs(local)
                self._write_files(pod, pod_ip, volume, local, objects)
            dirs[name] = local
        return dirs

    def _claim_dir(self, pod: dict, claim: str) -> str:
        namespace = pod["metadata"]["namespace"]
        pvc = self._kube.get_or_none(
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        if pvc is None:
            raise NotReady("ContainerCreating", f'persistentvolumeclaim "{claim}" not found')
        if (pvc.get("status") or {}).get("phase") != "Bound":
            raise NotReady("ContainerCreating", f'persistentvolumeclaim "{claim}" is not bound yet')
        local = self.volume_dir(namespace, claim)
        os.makedirs(local, exist_ok=True)
        return local

    def _write_files(self, pod: dict, pod_ip: str, volume: dict, local: str,
                     objects: _Objects) -> None:
        sources = (volume["projected"].get("sources", []) if "projected" in volume else [volume])
        default_mode = next((volume[k].get("defaultMode") for k in
                             ("projected", "secret", "configMap", "downwardAPI") if k in volume),
                            None) or 0o644
        for source in sources:
            for path, content, mode in self._source_files(pod, pod_ip, source, objects):
                target = os.path.join(local, path)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as out:
                    out.write(content)
                os.chmod(target, mode or default_mode)

    def _source_files(self, pod: dict, pod_ip: str, source: dict, objects: _Objects):
        """Yields (path, content, mode) for one volume source; unsupported ones yield nothing."""
        for kind, field, name_field in (("Secret", "secret", "secretName"),
                                        ("ConfigMap", "configMap", "name")):
            if field in source:
                ref = source[field]
                name = ref.get(name_field) or ref.get("name")
                data = objects.data(kind, name)
                if data is None:
                    if ref.get("optional"):
                        return
                    raise NotReady("ContainerCreating", f'{kind.lower()} "{name}" not found')
                items = ref.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] in data:
                        yield item["path"], data[item["key"]], item.get("mode")
                    elif not ref.get("optional"):
                        raise NotReady("ContainerCreating",
                                       f'couldn\'t find key {item["key"]} in {kind} {name}')
                return
        if "downwardAPI" in source:
            for item in source["downwardAPI"].get("items", []):
                value = (self._field(pod, pod_ip, item["fieldRef"]["fieldPath"])
                         if "fieldRef" in item
                         else self._resource(pod, pod["spec"]["containers"][0],
                                             item["resourceFieldRef"]))
                yield item["path"], value.encode(), item.get("mode")
        elif "serviceAccountToken" in source:
            yield source["serviceAccountToken"]["path"], self._token(pod, source), None

    def _token(self, pod: dict, source: dict) -> bytes:
        """A bound service-account token from the TokenRequest API, as kubelet projects it."""
        meta, spec = pod["metadata"], source["serviceAccountToken"]
        account = pod["spec"].get("serviceAccountName", "default")
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [spec["audience"]] if spec.get("audience") else [],
            "expirationSeconds": spec.get("expirationSeconds", 3600),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                               "uid": meta["uid"]}}}
        try:
            answer = self._kube.call(
                "POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token",
                request)
        except ApiError as error:
            raise NotReady("ContainerCreating", f"service account token: {error}") from None
        return answer["status"]["token"].encode()

    def _mounts(self, container: dict, volumes: dict[str, str],
                env: dict[str, str]) -> dict[str, str]:
        mounts = {}
        for mount in container.get("volumeMounts", []):
            if mount["name"] not in volumes:
                raise NotReady("CreateContainerConfigError", f'volume "{mount["name"]}" not found')
            sub_path = mount.get("subPath") or expand_references(mount.get("subPathExpr", ""), env)
            local = os.path.join(volumes[mount["name"]], sub_path) if sub_path else volumes[mount["name"]]
            if not os.path.exists(local):  # kubelet creates a missing subPath as a directory
                os.makedirs(local)
            mounts[mount["mountPath"]] = local
        return mounts

    # --- Command --------------------------------------------------------------------------

    def _program(self, name: str, search_path: str) -> str:
        """The local executable for command[0]: itself, an --entrypoint mapping, or on PATH."""
        if "/" in name and os.path.isfile(name) and os.access(name, os.X_OK):
            return name
        base = os.path.basename(name)
        for key in (name, base):
            if key in self._entrypoints:
                return self._entrypoints[key]
        found = shutil.which(base, path=search_path)
        if found:
            return found
        raise NotReady("RunContainerError", f'executable "{name}" not found on this machine: '
                       f"start the node agent with --entrypoint {base}=PATH")

    def _image_entrypoint(self, image: str) -> str:
        """The program standing for an image's entrypoint (the container has no command)."""
        reference = image.split("@", 1)[0]
        repository = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
        for key in (image, reference, repository, repository.rsplit("/", 1)[-1]):
            if key in self._entrypoints:
                return self._entrypoints[key]
        if self._default_entrypoint:
            return self._default_entrypoint
        raise NotReady("RunContainerError", f"container has no command and image {image!r} has "
                       f"no known entrypoint: start the node agent with "
                       f"--entrypoint {repository}=PATH or --default-entrypoint PATH")
