hf_api = None
