import gc


def freeze_gc_heap():
    gc.freeze()
