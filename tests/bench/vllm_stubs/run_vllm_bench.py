"""Runs vLLM's `vllm bench serve` (vllm/benchmarks/serve.py) with the stub package on sys.path."""
import sys

from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser

if __name__ == "__main__":
    parser = FlexibleArgumentParser(description="vLLM serving benchmark (stubbed)")
    add_cli_args(parser)
    result = main(parser.parse_args())
    sys.exit(0 if result.get("completed", 0) > 0 else 1)
