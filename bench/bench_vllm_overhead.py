"""How much time the harness adds on top of vLLM: the same requests through raw ``LLM.generate``, through the
vllm backend's ``sample()``, and through the whole run layer (``run_sampling``: benchmark, prompts, manifest,
SQLite commits). Prints a Markdown table; the harness should add under 5%.

The engine is started once and shared; the prefix cache is reset before every timed pass, and the passes are
interleaved in a rotating order so drift on a busy machine hits all three alike. With the tiny model
on CPU a decoding step costs almost nothing, so this is close to the worst case for relative overhead; with a
72B model on GPUs the same absolute overhead is a far smaller fraction.

    .venv-engines/bin/python bench/bench_vllm_overhead.py [--problems 16 --samples 8 --max-tokens 256 --repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ENGINE = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True, "kv_cache_memory_bytes": 256 * 2**20}


def _raw(sampler: Any, requests: list[Any], spec: Any) -> tuple[float, int, list[Any]]:
    """LLM.generate on the same token prompts and the same per-problem n and seeds; (seconds, tokens, outputs)."""
    from vllm import SamplingParams

    llm = sampler._llm
    prompts = [{"prompt_token_ids": sampler._render(r)} for r in requests]
    params = [SamplingParams(n=len(r.sample_indices), seed=r.seeds(spec.seed)[0], temperature=spec.temperature,
                             top_p=spec.top_p, max_tokens=spec.max_tokens) for r in requests]
    llm.reset_prefix_cache()
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    elapsed = time.perf_counter() - start
    rows = [(r.problem.id, c.index, tuple(c.token_ids)) for r, o in zip(requests, outputs) for c in o.outputs]
    return elapsed, sum(len(ids) for *_, ids in rows), sorted(rows)


def _sampler(sampler: Any, requests: list[Any], spec: Any) -> tuple[float, int, list[Any]]:
    sampler._llm.reset_prefix_cache()
    start = time.perf_counter()
    rows = [(c.problem_id, c.sample_index, c.token_ids) for c in sampler.sample(requests, spec)]
    elapsed = time.perf_counter() - start
    return elapsed, sum(len(ids) for *_, ids in rows), sorted(rows)


def _run_layer(sampler: Any, model: str, problems: int, samples: int, spec: Any) -> tuple[float, int, list[Any]]:
    from harness.run import RunRequest, run_sampling
    from harness.store import RunStore

    class Shared:  # the run layer closes its sampler at the end; this one is shared between passes
        name = "vllm"
        engine_settings, sample = sampler.engine_settings, sampler.sample

        def close(self) -> None:
            pass

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        request = RunRequest(bench="aime24", backend="vllm", model=model, samples=samples, spec=spec, out=out,
                             limit=problems)
        sampler._llm.reset_prefix_cache()
        start = time.perf_counter()
        run_sampling(request, lambda backend, **options: Shared(), progress=False)
        elapsed = time.perf_counter() - start
        with RunStore.open(out) as store:
            rows = [(c.problem_id, c.sample_index, c.token_ids) for c in store.completions(with_token_ids=True)]
    return elapsed, sum(len(ids) for *_, ids in rows), sorted(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: build the tiny test model)")
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep the table readable

    from harness import benchmarks, prompts
    from harness.samplers.base import SampleRequest
    from harness.samplers.vllm import VLLMSampler
    from harness.types import SamplingSpec

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from harness.tiny_model import build_tiny_model

            model = str(build_tiny_model(Path(tmp) / "tiny"))
        spec = SamplingSpec(max_tokens=args.max_tokens, temperature=0.8, top_p=0.95, seed=0)
        template = prompts.load_prompt("default")
        problems = benchmarks.select(benchmarks.load_benchmark("aime24").problems, limit=args.problems)
        requests = [SampleRequest(p, template.messages(p.question), tuple(range(args.samples))) for p in problems]
        sampler = VLLMSampler(model, **ENGINE)
        try:
            _sampler(sampler, requests, spec)  # warm-up
            paths = {"raw": lambda: _raw(sampler, requests, spec),
                     "sampler": lambda: _sampler(sampler, requests, spec),
                     "run": lambda: _run_layer(sampler, model, args.problems, args.samples, spec)}
            passes: dict[str, list[tuple[float, int, list[Any]]]] = {key: [] for key in paths}
            order = list(paths)
            for _ in range(args.repeats):
                for key in order:
                    passes[key].append(paths[key]())
                order = order[1:] + order[:1]  # rotate, so no path always runs first or last
        finally:
            sampler.close()
    _print_table(passes, args)


def _print_table(passes: dict[str, list[tuple[float, int, list[Any]]]], args: argparse.Namespace) -> None:
    labels = {"raw": "raw `LLM.generate`", "sampler": "`VLLMSampler.sample`", "run": "`run_sampling` (+ SQLite)"}
    same = all(rows == passes["raw"][0][2] for runs in passes.values() for _, _, rows in runs)
    print(f"{args.problems} problems x {args.samples} samples, max_tokens {args.max_tokens}, "
          f"{args.repeats} interleaved passes each; identical samples on every path: {'yes' if same else 'NO'}\n")
    # "vs raw" pairs each pass with the raw pass of the same round (they ran seconds apart), which cancels most
    # of the drift of a shared machine; the median over rounds is reported.
    print("| path | median s | min s | output tokens | tokens/s | vs raw (median of paired ratios) |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, runs in passes.items():
        times = [t for t, _, _ in runs]
        median, tokens = statistics.median(times), runs[0][1]
        paired = statistics.median(t / raw for (t, _, _), (raw, _, _) in zip(runs, passes["raw"]))
        print(f"| {labels[key]} | {median:.2f} | {min(times):.2f} | {tokens} | {tokens / median:.0f} | "
              f"{paired:.3f}x |")


if __name__ == "__main__":
    main()
