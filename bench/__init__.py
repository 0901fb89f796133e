"""GPU benchmarks (run on a CUDA machine, not by CI); ``bench.common`` holds their pure-Python parts."""
