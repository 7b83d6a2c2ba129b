"""The environment build a Kubernetes pod runs in its init container (issue 10, part 5).

Shipped in the deployment's ConfigMap next to the scoring host and run by the image's own
``python`` (standard library only, Python 3.8 or later): it reads ``build.json`` beside it
(the requirement lines that ``services.environments.resolve`` made of the conda file, the
same for a local pool and a pod) and builds them into ``MODELDECK_ENV_DIR/venv`` with
``python -m venv`` and that venv's ``pip install`` (stock Python images have both; an image
whose venv has no ensurepip gets ``--without-pip`` and the image's own pip with
``--python``). The scoring container then runs the host with ``venv/bin/python``.

Index, mirror and proxy come from the container's environment as pip reads it
(``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_TRUSTED_HOST``,
``PIP_CONFIG_FILE``, ``HTTPS_PROXY``...): nothing secret is ever in argv. pip's own lines
go to the container's log (``get-logs``: stream ``environment``); a failure exits with
pip's status after removing what it built, so a restarted init container starts clean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run(cmd: list[str]) -> int:
    sys.stdout.flush()
    try:
        return subprocess.call(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    except OSError as exc:
        say(f"cannot run {cmd[0]}: {exc}")
        return 127


def main() -> int:
    with open(os.path.join(HERE, "build.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    key = cfg["key"]
    target = os.environ.get("MODELDECK_ENV_DIR") or cfg["target"]
    venv = os.path.join(target, "venv")
    marker = os.path.join(target, "modeldeck-env.json")
    short = key[:12]
    try:
        with open(marker, encoding="utf-8") as f:
            if json.load(f).get("key") == key:
                say(f"environment {short}: already built; reusing it")
                return 0
    except (OSError, ValueError):
        pass
    shutil.rmtree(venv, ignore_errors=True)  # a build an earlier attempt left half-done
    have = "{}.{}".format(*sys.version_info[:2])
    say(
        f"environment {short}: {len(cfg['requirements'])} package(s) on Python "
        f"{sys.version.split()[0]} ({sys.executable})"
    )
    for line in cfg.get("warnings") or []:
        say(f"warning: {line}")
    wanted = cfg.get("python")
    if wanted and have != ".".join(str(wanted).split(".")[:2]):
        say(
            f"warning: the conda file asks for python={wanted}; this image has Python {have}: "
            "building with it (name an image with that Python in environment.image)"
        )
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        if os.environ.get(name):
            say(f"{name} is set")
    if run([sys.executable, "-m", "venv", venv]) == 0:
        pip = [os.path.join(venv, "bin", "python"), "-m", "pip"]
    else:
        say("python -m venv failed (no ensurepip in this image?): trying --without-pip")
        shutil.rmtree(venv, ignore_errors=True)
        if run([sys.executable, "-m", "venv", "--without-pip", venv]) != 0:
            say(f"environment {short}: this image's python cannot make a venv; nothing is kept")
            shutil.rmtree(venv, ignore_errors=True)
            return 1
        pip = [sys.executable, "-m", "pip", "--python", os.path.join(venv, "bin", "python")]
    cmd = [
        *pip,
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--no-warn-script-location",
        "--progress-bar",
        "off",
        "-r",
        os.path.join(HERE, "requirements.txt"),
    ]
    rc = run(cmd)
    if rc != 0:
        say(f"environment {short}: pip install failed (exit {rc}); nothing is kept")
        shutil.rmtree(venv, ignore_errors=True)
        return rc
    with open(marker, "w", encoding="utf-8") as f:
        json.dump({"key": key, "requirements": cfg["requirements"]}, f)
    say(f"environment {short} built ({venv}/bin/python)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
