def get_audio_duration(*args, **kwargs):
    raise NotImplementedError("audio is not available in the vllm stub")
