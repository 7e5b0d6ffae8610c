class LoRARequest:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("LoRA is not available in the vllm stub")
