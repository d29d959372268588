"""A real `mmagent serve` app on uvicorn, on a free loopback port, in a thread of the test process."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image


def png_data_uri(size: tuple[int, int] = (32, 24), color: str = "red") -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@contextmanager
def running(app: Any, lifespan: str = "off") -> Iterator[str]:
    """Serves `app` on 127.0.0.1:<free port> (uvicorn binds port 0); yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def served_agent(tmp: Path, model: Any, **config: Any) -> Iterator[tuple[str, Any]]:
    """`mmagent serve`'s app over an Agent on `model` with its stores in `tmp`; yields (url, agent)."""
    from mmagent.serve import ServeConfig, create_app, shared_agent

    cfg = ServeConfig(model=config.pop("model_id", "scripted"), **config)
    agent = shared_agent(cfg, model, log=tmp / "log.sqlite", checkpoint=tmp / "ckpt.sqlite", artifacts_root=tmp / "art",
                         memory=tmp / "memory")
    try:
        with running(create_app(cfg, agent)) as url:
            yield url, agent
    finally:
        agent.close()
