"""Several `glassbox serve` replicas behind Debian's nginx on this machine, from deploy/'s own site file.

nginx runs the repository's deploy/nginx/glassbox.conf.template as the official nginx image does: envsubst
fills in ${NGINX_PORT}, the file is included inside `http { }`, and glassbox/replicas.conf beside the main
configuration names the replicas. What this module writes is only what /etc/nginx/nginx.conf holds on a
server (pid, temp paths, logs), all under a private prefix (`nginx -p`), so it runs without root.

Used by tests/deploy and `bench/classroom.py --replicas N`.

    with Cluster(3, model="tiny") as cluster:
        httpx.get(cluster.base + "/?text=hello").headers["X-Glassbox-Replica"]
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx" / "glassbox.conf.template"
REPLICA = "X-Glassbox-Replica"

# What a server's /etc/nginx/nginx.conf holds, with every path under the prefix.
MAIN_CONF = """\
daemon off;
{user}worker_processes {workers};
pid nginx.pid;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include glassbox.conf;
}}
"""


def missing_tools() -> str | None:
    """Why a cluster cannot start here (no nginx, no envsubst), or None."""
    for tool, package in (("nginx", "nginx"), ("envsubst", "gettext-base")):
        if shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
            return f"{tool} is not installed (apt-get install {package})"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    """Until `url` answers 200; fail with the log's end if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class Replica:
    """One `glassbox serve` process on a loopback port; `name` is what its X-Glassbox-Replica header says."""

    def __init__(self, port: int, log: Path, args: list[str]) -> None:
        self.port = port
        self.log = log
        self.args = args
        self.url = f"http://127.0.0.1:{port}"
        self.name = f"{socket.gethostname()}:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait(self) -> None:
        assert self.proc is not None
        wait_for(f"{self.url}/healthz", self.proc, self.log)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with whatever it was answering."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def stats(self) -> dict:
        """This replica's own /api/stats, asked directly (not through nginx)."""
        return httpx.get(f"{self.url}/api/stats", timeout=10).json()


class Cluster:
    """`n` replicas (single worker each) and nginx in front of them, on loopback ports."""

    def __init__(
        self,
        n: int,
        *,
        model: str = "tiny",
        threads: int = 1,
        serve_args: tuple[str, ...] = (),
        nginx_workers: str = "1",
        prefix: Path | None = None,
    ) -> None:
        self.prefix = prefix or Path(tempfile.mkdtemp(prefix="glassbox-cluster-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.nginx_workers = nginx_workers
        args = [
            "--model",
            model,
            "--fallback",
            "",
            "--workers",
            "1",
            "--threads",
            str(threads),
            "--replica-header",
            "true",
            *serve_args,
        ]
        self.replicas = [Replica(free_port(), self.prefix / f"replica-{i}.log", args) for i in range(n)]
        self.nginx: subprocess.Popen[bytes] | None = None
        self.nginx_log = self.prefix / "nginx.log"

    def by_name(self, name: str) -> Replica:
        return next(r for r in self.replicas if r.name == name)

    def write_config(self) -> Path:
        """The main configuration, the site from deploy/ with its port filled in, and the replicas."""
        for sub in ("temp", "cache", "glassbox"):
            (self.prefix / sub).mkdir(exist_ok=True)
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        main = self.prefix / "nginx.conf"
        main.write_text(MAIN_CONF.format(user=user, workers=self.nginx_workers))
        env = {**os.environ, "NGINX_PORT": str(self.port)}
        site = subprocess.run(
            ["envsubst", "${NGINX_PORT}"],
            input=SITE.read_text(),
            env=env,
            text=True,
            capture_output=True,
            check=True,
        )
        (self.prefix / "glassbox.conf").write_text(site.stdout)
        servers = "".join(f"server 127.0.0.1:{r.port};\n" for r in self.replicas)
        (self.prefix / "glassbox" / "replicas.conf").write_text(servers)
        return main

    def nginx_cmd(self, *extra: str) -> list[str]:
        nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin") or "nginx"
        return [nginx, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-e", "stderr", *extra]

    def start(self) -> Cluster:
        main = self.write_config()
        check = subprocess.run(self.nginx_cmd("-t"), capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed on {main}:\n{check.stderr}")
        for r in self.replicas:
            r.start()
        for r in self.replicas:
            r.wait()
        with self.nginx_log.open("ab") as out:
            self.nginx = subprocess.Popen(self.nginx_cmd(), stdout=out, stderr=subprocess.STDOUT)
        wait_for(f"{self.base}/healthz", self.nginx, self.nginx_log, timeout=30)
        return self

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful: finish the answers under way
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for r in self.replicas:
            r.stop()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
