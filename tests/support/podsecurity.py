"""Pod Security admission, as the API server runs it: the ``baseline`` and ``restricted``
checks of the Pod Security Standards on a pod's metadata and spec, with the messages the
real admission gives.

Written from the standard's text
(https://kubernetes.io/docs/concepts/security/pod-security-standards/: the controls, their
restricted fields and allowed values), with the reasons, details and their order as
Kubernetes' own ``pod-security-admission`` package words them (``policy/check_*.go``:
baseline checks first, then the restricted ones, each in the order of its file name;
``restricted`` replaces the baseline checks it overlaps: capabilities, hostPath volumes,
seccomp). A refused pod is ``403 Forbidden``, ``pods "NAME" is forbidden: violates
PodSecurity "restricted:latest": REASON (DETAIL), REASON (DETAIL)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
LEVELS = ("privileged", "baseline", "restricted")

#: the volume types restricted admits (everything else, hostPath first, is refused)
ALLOWED_VOLUMES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
#: capabilities baseline lets a container add (the container runtime's default set)
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

Result = tuple[str, str] | None  # (reason, detail) of a refusal, or None
Check = Callable[[Mapping[str, Any], Mapping[str, Any]], Result]


def _quote(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _containers(spec: Mapping[str, Any]) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(obj: Mapping[str, Any]) -> dict:
    return obj.get("securityContext") or {}


def _named(word: str, names: list[str]) -> str:
    return f"{word if len(names) == 1 else word + 's'} {_quote(names)}"


def _setters(pod_bad: bool, containers: list[str]) -> str:
    parts = (["pod"] if pod_bad else []) + ([_named("container", containers)] if containers else [])
    return " and ".join(parts)


# ------------------------------------------------------------------ baseline


def app_armor(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad = sorted(
        f'{k}="{v}"'
        for k, v in (meta.get("annotations") or {}).items()
        if k.startswith(APPARMOR_ANNOTATION)
        and v
        and v != "runtime/default"
        and not v.startswith("localhost/")
    )
    for where, sc in [("pod", _sc(spec))] + [(c["name"], _sc(c)) for c in _containers(spec)]:
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            bad.append(f'{where} appArmorProfile.type="Unconfined"')
    if bad:
        word = "forbidden AppArmor profile" + ("s" if len(bad) > 1 else "")
        return word, ", ".join(bad)
    return None


def host_namespaces(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad = [k for k in ("hostIPC", "hostNetwork", "hostPID") if spec.get(k)]
    return ("host namespaces", ", ".join(bad)) if bad else None


def host_ports(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    names, ports = [], set()
    for c in _containers(spec):
        used = [str(p["hostPort"]) for p in c.get("ports") or [] if p.get("hostPort")]
        if used:
            names.append(c["name"])
            ports.update(used)
    if not names:
        return None
    uses = "uses" if len(names) == 1 else "use"
    word = "hostPort" if len(ports) == 1 else "hostPorts"
    return "hostPort", f"{_named('container', names)} {uses} {word} {', '.join(sorted(ports))}"


def privileged(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("privileged")]
    if bad:
        return (
            "privileged",
            f"{_named('container', bad)} must not set securityContext.privileged=true",
        )
    return None


def proc_mount(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad, kinds = [], set()
    for c in _containers(spec):
        kind = _sc(c).get("procMount")
        if kind not in (None, "Default"):
            bad.append(c["name"])
            kinds.add(kind)
    if bad:
        return "procMount", (
            f"{_named('container', bad)} must not set securityContext.procMount to "
            f"{_quote(sorted(kinds))}"
        )
    return None


def se_linux(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    types: set[str] = set()
    user = role = False

    def ok(opts: Mapping[str, Any] | None) -> bool:
        nonlocal user, role
        if opts is None:
            return True
        good = True
        if (opts.get("type") or "") not in SELINUX_TYPES:
            types.add(opts["type"])
            good = False
        if opts.get("user"):
            user, good = True, False
        if opts.get("role"):
            role, good = True, False
        return good

    pod_bad = not ok(_sc(spec).get("seLinuxOptions"))
    bad = [c["name"] for c in _containers(spec) if not ok(_sc(c).get("seLinuxOptions"))]
    if not (pod_bad or bad):
        return None
    what = [f"{'type' if len(types) == 1 else 'types'} {_quote(sorted(types))}"] if types else []
    what += ["user may not be set"] if user else []
    what += ["role may not be set"] if role else []
    return "seLinuxOptions", (
        f"{_setters(pod_bad, bad)} set forbidden securityContext.seLinuxOptions: {'; '.join(what)}"
    )


def sysctls(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad = [s["name"] for s in _sc(spec).get("sysctls") or [] if s["name"] not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def host_process(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    pod = (_sc(spec).get("windowsOptions") or {}).get("hostProcess")
    bad = [
        c["name"]
        for c in _containers(spec)
        if (_sc(c).get("windowsOptions") or {}).get("hostProcess")
    ]
    if pod or bad:
        return (
            "hostProcess",
            f"{_setters(bool(pod), bad)} must not set securityContext.windowsOptions.hostProcess=true",
        )
    return None


# baseline checks that restricted replaces with stricter ones


def capabilities_baseline(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad, caps = [], set()
    for c in _containers(spec):
        extra = [
            x
            for x in (_sc(c).get("capabilities") or {}).get("add") or []
            if x not in BASELINE_CAPABILITIES
        ]
        if extra:
            bad.append(c["name"])
            caps.update(extra)
    if bad:
        return "non-default capabilities", (
            f"{_named('container', bad)} must not include {_quote(sorted(caps))} in "
            "securityContext.capabilities.add"
        )
    return None


def host_path_volumes(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    return ("hostPath volumes", _named("volume", bad)) if bad else None


def seccomp_baseline(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    pod_bad = (_sc(spec).get("seccompProfile") or {}).get("type") == "Unconfined"
    bad = [
        c["name"]
        for c in _containers(spec)
        if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"
    ]
    if pod_bad or bad:
        return (
            "seccompProfile",
            f'{_setters(pod_bad, bad)} must not set securityContext.seccompProfile.type to "Unconfined"',
        )
    return None


# ------------------------------------------------------------------ restricted


def allow_privilege_escalation(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad = [
        c["name"] for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False
    ]
    if bad:
        return "allowPrivilegeEscalation != false", (
            f"{_named('container', bad)} must set securityContext.allowPrivilegeEscalation=false"
        )
    return None


def capabilities_restricted(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    no_drop, adding, caps = [], [], set()
    for c in _containers(spec):
        got = _sc(c).get("capabilities") or {}
        if "ALL" not in (got.get("drop") or []):
            no_drop.append(c["name"])
        extra = [x for x in got.get("add") or [] if x != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c["name"])
            caps.update(extra)
    details = []
    if no_drop:
        details.append(
            f'{_named("container", no_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_named('container', adding)} must not include {_quote(sorted(caps))} in "
            "securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def restricted_volumes(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    bad, kinds = [], set()
    for v in spec.get("volumes") or []:
        kind = next((k for k in v if k != "name"), "unknown")
        if kind not in ALLOWED_VOLUMES:
            bad.append(v["name"])
            kinds.add(kind)
    if not bad:
        return None
    uses = "uses" if len(bad) == 1 else "use"
    word = "restricted volume type" + ("s" if len(kinds) > 1 else "")
    return (
        "restricted volume types",
        f"{_named('volume', bad)} {uses} {word} {_quote(sorted(kinds))}",
    )


def run_as_non_root(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    pod = _sc(spec).get("runAsNonRoot")
    explicit = [c["name"] for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    implicit = [
        c["name"]
        for c in _containers(spec)
        if _sc(c).get("runAsNonRoot") is None and pod is not True
    ]
    if pod is False or explicit:
        return (
            "runAsNonRoot != true",
            f"{_setters(pod is False, explicit)} must not set securityContext.runAsNonRoot=false",
        )
    if implicit:
        return (
            "runAsNonRoot != true",
            f"pod or {_named('container', implicit)} must set securityContext.runAsNonRoot=true",
        )
    return None


def run_as_user(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    pod_bad = _sc(spec).get("runAsUser") == 0
    bad = [c["name"] for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if pod_bad or bad:
        return "runAsUser=0", f"{_setters(pod_bad, bad)} must not set runAsUser=0"
    return None


def seccomp_restricted(meta: Mapping[str, Any], spec: Mapping[str, Any]) -> Result:
    def valid(sc: Mapping[str, Any]) -> bool | None:
        profile = sc.get("seccompProfile")
        return None if profile is None else profile.get("type") in ("RuntimeDefault", "Localhost")

    values: set[str] = set()
    pod = valid(_sc(spec))
    if pod is False:
        values.add(_sc(spec)["seccompProfile"].get("type", ""))
    explicit, implicit = [], []
    for c in _containers(spec):
        ok = valid(_sc(c))
        if ok is False:
            explicit.append(c["name"])
            values.add(_sc(c)["seccompProfile"].get("type", ""))
        elif ok is None and pod is not True:
            implicit.append(c["name"])
    if pod is False or explicit:
        return "seccompProfile", (
            f"{_setters(pod is False, explicit)} must not set securityContext.seccompProfile.type "
            f"to {_quote(sorted(values))}"
        )
    if implicit:
        return "seccompProfile", (
            f"pod or {_named('container', implicit)} must set securityContext.seccompProfile.type "
            'to "RuntimeDefault" or "Localhost"'
        )
    return None


BASELINE: tuple[Check, ...] = (
    app_armor,
    host_namespaces,
    host_ports,
    privileged,
    proc_mount,
    se_linux,
    sysctls,
    host_process,
)
BASELINE_ONLY: tuple[Check, ...] = (capabilities_baseline, host_path_volumes, seccomp_baseline)
RESTRICTED: tuple[Check, ...] = (
    allow_privilege_escalation,
    capabilities_restricted,
    restricted_volumes,
    run_as_non_root,
    run_as_user,
    seccomp_restricted,
)


def violations(
    meta: Mapping[str, Any], spec: Mapping[str, Any], level: str = "restricted"
) -> list[str]:
    """``REASON (DETAIL)`` of each check the pod fails at ``level``, in admission's order."""
    if level == "privileged":
        return []
    checks = BASELINE + (RESTRICTED if level == "restricted" else BASELINE_ONLY)
    out = []
    for check in checks:
        found = check(meta, spec)
        if found:
            reason, detail = found
            out.append(f"{reason} ({detail})" if detail else reason)
    return out


def enforced(namespace_labels: Mapping[str, str] | None) -> str | None:
    """The ``LEVEL:VERSION`` a namespace enforces (None: privileged, nothing refused). A
    level that is not one of the three is enforced as ``restricted``, as the API server does."""
    labels = namespace_labels or {}
    if ENFORCE_LABEL not in labels:
        return None
    level = labels[ENFORCE_LABEL] if labels[ENFORCE_LABEL] in LEVELS else "restricted"
    if level == "privileged":
        return None
    return f"{level}:{labels.get(ENFORCE_VERSION_LABEL, 'latest')}"


def refusal(namespace_labels: Mapping[str, str] | None, pod: Mapping[str, Any]) -> str | None:
    """Why admission refuses ``pod`` (a Pod or a pod template) in a namespace with these
    labels: ``violates PodSecurity "restricted:latest": ...``; None when it is admitted."""
    policy = enforced(namespace_labels)
    if policy is None:
        return None
    found = violations(pod.get("metadata") or {}, pod.get("spec") or {}, policy.split(":")[0])
    return f'violates PodSecurity "{policy}": {", ".join(found)}' if found else None
