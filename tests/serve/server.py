"""Start the real `groundwork serve` (uvicorn) in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

GW = str(Path(sys.executable).parent / "groundwork")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_key(kb: Path, name: str, scopes: str, groups: str | None = None, tenant: str | None = None) -> str:
    args = [GW, "--kb", str(kb), "keys", "create", "--name", name, "--scopes", scopes, "--json"]
    if groups:
        args += ["--groups", groups]
    if tenant:
        args += ["--tenant", tenant]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout)["key"]


class Server:
    def __init__(self, kb: Path, env: dict[str, str] | None = None, no_auth: bool = False) -> None:
        self.kb, self.port = kb, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.no_auth = no_auth
        self.proc: subprocess.Popen | None = None
        self.log = kb.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 120) -> Server:
        args = [GW, "--kb", str(self.kb), "serve", "--port", str(self.port)] + (["--no-auth"] if self.no_auth else [])
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = client.get(f"/v1/jobs/{job_id}")
        if r.status_code == 429:
            time.sleep(float(r.headers["Retry-After"]))
            continue
        job = r.json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {job}")
