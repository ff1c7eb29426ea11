"""The CNAPS sandbox over HTTP (docs/SERVER.md): a FastAPI app over the sandbox's core.

``core.py`` the world and its single writer, shared with the card port; ``writer.py`` the
engine thread (group commits); ``clock.py`` wall or virtual time; ``auth.py`` API keys;
``deps.py`` who may see what; ``routes_*.py`` the routes; ``transfers.py`` JSON transfers;
``views.py`` what the API shows of the world; ``inputs.py`` and ``errors.py`` checking and
refusing; ``metrics.py`` Prometheus; ``serve.py`` uvicorn in a thread; ``app.py`` the app.
"""

from qingsuan.server.http.app import create_app
from qingsuan.server.http.auth import KeyRing
from qingsuan.server.http.clock import SandboxClock
from qingsuan.server.http.core import SandboxCore

__all__ = ["KeyRing", "SandboxClock", "SandboxCore", "create_app"]
