"""Run kubectl against one cluster: for tests, demo scripts and anything that wants the real CLI's behaviour."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class KubectlError(RuntimeError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(f"`{' '.join(args)}` exited with {result.returncode}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Kubectl:
    """``kubectl("get", "pods", "-n", ns)``; ``kubectl.json("get", "deploy", "x")`` parses ``-o json`` output."""

    binary: Path
    kubeconfig: Path
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def env(self) -> dict[str, str]:
        """The environment kubectl runs with: ``KUBECONFIG`` set, this kubectl first on ``PATH``."""
        env = dict(self.base_env)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.binary.parent), env.get("PATH", "")])
        return env

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), *args]
        result = subprocess.run(
            argv, input=input, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(["kubectl", *args], result)
        return result

    def json(self, *args: str, timeout: float = 60.0) -> Any:
        return json.loads(self(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, manifest: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` with ``manifest`` (YAML or JSON) on stdin."""
        return self("apply", "-f", "-", *args, input=manifest)
