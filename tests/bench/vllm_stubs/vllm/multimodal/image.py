def convert_image_mode(*args, **kwargs):
    raise NotImplementedError("images are not available in the vllm stub")
