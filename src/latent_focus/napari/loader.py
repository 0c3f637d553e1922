"""Loading the chosen method with its model on its device, off the UI thread and once per choice."""

from __future__ import annotations

from collections.abc import Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

from ..methods import forget_loaded, load_method


class MethodLoader:
    """Loads ``(method, model, device)`` keys in a worker and keeps what loaded and what failed.

    ``current()`` gives the key the panel wants now; ``on_loading(key)``, ``on_ready(method)`` and
    ``on_failed(message)`` run in the UI thread. A result for a key no longer wanted is kept, not shown,
    and the wanted key is loaded next.
    """

    def __init__(self, current: Callable[[], tuple], on_loading: Callable[[tuple], None],
                 on_ready: Callable, on_failed: Callable[[str], None]):
        self._current, self._on_loading, self._on_ready, self._on_failed = current, on_loading, on_ready, on_failed
        self._ready: dict[tuple, object] = {}
        self._failed: dict[tuple, str] = {}
        self._worker = None
        self._key: tuple | None = None
        self._then: list[Callable] = []
        self._stopped = False

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def failed(self) -> str | None:
        """Why the current key could not be loaded, or None."""
        return self._failed.get(self._current())

    def reload(self) -> None:
        """Load the current key again (a model was chosen or rewritten)."""
        key = self._current()
        self._failed.pop(key, None)
        self._ready.pop(key, None)
        self.with_method(self._on_ready)

    def forget(self, folder: str) -> None:
        """Drop every loaded method, and the process-wide ones loaded from ``folder`` (it was rewritten)."""
        forget_loaded(folder)
        self._ready.clear()
        self._failed.clear()

    def with_method(self, then: Callable) -> None:
        """Call ``then(method)`` once the current key is loaded (loading it in a worker the first time)."""
        key = self._current()
        if key in self._failed:
            self._on_failed(self._failed[key])
            return
        if key in self._ready and self._worker is None:
            then(self._ready[key])
            return
        if self._worker is not None:
            if self._key == key and then not in self._then:
                self._then.append(then)
            return
        self._key, self._then = key, [then] if then is self._on_ready else [self._on_ready, then]
        self._on_loading(key)
        worker = create_worker(load_method, *key, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._loaded)
        worker.errored.connect(self._load_failed)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _loaded(self, method) -> None:
        self._ready[self._key] = method
        if self._stopped or self._key != self._current():
            return
        for then in self._then:
            then(method)

    def _load_failed(self, exc: Exception) -> None:
        self._failed[self._key] = str(exc)
        if not self._stopped and self._key == self._current():
            show_error(f"Latent Focus: {exc}")
            self._on_failed(str(exc))

    def _finished(self) -> None:
        self._worker = None
        if not self._stopped and self._key != self._current():  # the choice changed while loading
            self.with_method(self._on_ready)

    def stop(self) -> None:
        """Ignore the load in flight (the panel is closing); it finishes on its own."""
        self._stopped = True
