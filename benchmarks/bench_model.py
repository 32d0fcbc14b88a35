"""Print one JSON line of the policy's decision latency, parameters and memory (see `cliport bench`)."""

import argparse
import json

from cliport_ros.training.bench import run_bench

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="tiny", choices=("paper", "tiny"))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run_bench(args.config, args.device, args.threads, args.repeats, args.warmup)))
