class Image:
    pass


def open(*args, **kwargs):
    raise NotImplementedError("Pillow is not installed (vllm stub)")
