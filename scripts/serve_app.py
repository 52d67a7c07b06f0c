"""Serve a notebook as a page without code (Voila) for a class: each page's kernel ends when
the page closes, and kernels whose page went away without saying so are culled.

    python scripts/serve_app.py notebooks/app.ipynb [voila options]      (what `make app` runs)

This is ``voila`` with two changes a classroom needs:

* **A kernel ends with its page.** Voila's page asks the server to shut its kernel down when
  it closes (a ``sendBeacon`` POST to ``/voila/api/shutdown/<kernel>``), sending the
  ``_xsrf`` cookie as the form's ``_xsrf`` field. Voila 0.5 streams the page without ever
  reading the handler's XSRF token, so the cookie is never set and the server answers
  ``403 '_xsrf' argument missing``: every load or reload keeps its kernel (hundreds of MB
  each) until the server stops. Here the page's handler sets the cookie before the page's
  first byte; the XSRF check itself stays on.
* **Idle kernels without a page are culled** (a laptop lid closed, a browser that crashed,
  a network that dropped: no beacon then). By default a kernel with no open connection for
  :data:`CULL_IDLE_TIMEOUT` seconds is shut down, checked every :data:`CULL_INTERVAL`
  seconds; a kernel whose page is still open is never culled. Any
  ``--MappingKernelManager.cull_…`` option given on the command line wins.

Voila is needed (``pip install voila``). A script, not a module of the package: importing
``cnnviz_widgets`` would load TensorFlow into the server process, which only serves pages
(the kernels import it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

CULL_IDLE_TIMEOUT = 600  # seconds without a connection (and without activity)
CULL_INTERVAL = 60  # seconds between two looks


def classroom_options(argv: Sequence[str]) -> list[str]:
    """``argv`` with the culling defaults added where the command line does not set them."""
    options = list(argv)
    defaults = {
        "--MappingKernelManager.cull_idle_timeout": CULL_IDLE_TIMEOUT,
        "--MappingKernelManager.cull_interval": CULL_INTERVAL,
        "--MappingKernelManager.cull_connected": False,
    }
    for name, value in defaults.items():
        if not any(arg.split("=", 1)[0] == name for arg in options):
            options.append(f"{name}={value}")
    return options


def voila_app_class() -> type:
    """Voila's application class, its page handler made to set the ``_xsrf`` cookie."""
    from voila.app import Voila
    from voila.tornado.handler import TornadoVoilaHandler

    class PageHandler(TornadoVoilaHandler):
        """Voila's page, with the ``_xsrf`` cookie its shutdown beacon sends back."""

        async def get(self, path: str | None = None) -> None:
            # reading the token sets the cookie; it must happen before the first flush
            self.xsrf_token  # noqa: B018
            await super().get(path=path)

    class ClassroomVoila(Voila):
        """Voila whose kernels end when their page closes."""

        def init_handlers(self) -> list:
            handlers = super().init_handlers()
            return [
                (h[0], PageHandler, *h[2:])
                if isinstance(h, tuple) and h[1] is TornadoVoilaHandler
                else h
                for h in handlers
            ]

    return ClassroomVoila


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server (the command line of ``voila``, with the classroom's defaults)."""
    args = classroom_options(sys.argv[1:] if argv is None else argv)
    voila_app_class().launch_instance(argv=args)


if __name__ == "__main__":
    main()
