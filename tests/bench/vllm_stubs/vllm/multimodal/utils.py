def encode_image_url(*args, **kwargs):
    raise NotImplementedError("images are not available in the vllm stub")


def fetch_image(*args, **kwargs):
    raise NotImplementedError("images are not available in the vllm stub")
