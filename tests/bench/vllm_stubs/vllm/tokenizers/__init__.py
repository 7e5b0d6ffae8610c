# The tokenizer the benchmark builds prompts with: a local directory with tokenizer.json, via transformers.
import os
from typing import Any

TokenizerLike = Any


def get_tokenizer(tokenizer_name, *args, **kwargs):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = str(tokenizer_name)
    if os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        return AutoTokenizer.from_pretrained(path)
    return PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"))
