"""Name -> function registries (strategies, units, suites, backends, parsers...).

Config files name things; the code they name is registered here, so an unknown name is an error
with a did-you-mean instead of a silent default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from harness_ext.core.errors import ConfigError, unknown

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of registered objects of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str | None = None) -> Callable[[T], T]:
        """Decorator: register `obj` under `name`; `doc` defaults to its docstring's first line."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ConfigError(f"{self.kind} '{name}' is registered twice.")
            self._items[name] = obj
            text = doc if doc is not None else (getattr(obj, "__doc__", None) or "")
            self._docs[name] = text.strip().splitlines()[0] if text.strip() else ""
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def doc(self, name: str) -> str:
        return self._docs.get(name, "")

    def help_text(self) -> str:
        """One line per entry, for --help epilogs."""
        width = max((len(n) for n in self._items), default=0)
        return "\n".join(f"  {n.ljust(width)}  {self._docs[n]}" for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
