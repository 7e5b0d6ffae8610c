def is_mistral_tokenizer(tokenizer):
    return False
