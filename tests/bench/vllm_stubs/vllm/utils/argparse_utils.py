import argparse


class FlexibleArgumentParser(argparse.ArgumentParser):
    """vLLM's parser also accepts underscores in flag names; that is all the benchmark needs."""

    def parse_args(self, args=None, namespace=None):
        import sys

        args = sys.argv[1:] if args is None else args
        fixed = []
        for a in args:
            if a.startswith("--"):
                name, eq, val = a.partition("=")
                a = name.replace("_", "-") + eq + val
            fixed.append(a)
        return super().parse_args(fixed, namespace)
