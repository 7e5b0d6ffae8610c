class PlaceholderModule:
    """Stands for an optional dependency that is not installed; fails only when used."""

    def __init__(self, name):
        self._name = name

    def placeholder_attr(self, attr):
        return _Missing(f"{self._name}.{attr}")

    def __getattr__(self, attr):
        raise ImportError(f"{self._name} is not installed (vllm stub)")


class _Missing:
    def __init__(self, name):
        self._name = name

    def __call__(self, *a, **k):
        raise ImportError(f"{self._name} is not installed (vllm stub)")

    def __getattr__(self, attr):
        raise ImportError(f"{self._name} is not installed (vllm stub)")
