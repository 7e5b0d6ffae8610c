# Stub package: see ../README.md. vllm/benchmarks is copied in next to it from the vllm wheel.
