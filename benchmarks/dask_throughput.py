"""Throughput of fastgru.distributed.predict on a dask LocalCluster with 1 and 2 worker processes.

    pip install -e '.[dask]'
    python benchmarks/dask_throughput.py                     # 20,000 x 10 x 50 -> GRU(64), chunks of 1,000
    python benchmarks/dask_throughput.py --workers 1 2 4 --n 100000 --chunk 2000 --json out.json

Each configuration: a fresh LocalCluster (processes, 1 thread per worker, fastgru 1 thread per task),
the input made and persisted on the workers first (as data already in the cluster), one untimed warm-up job
(workers unpickle the model and load the Numba kernels), then ``--repeats`` timed jobs of
``predict(model, x).persist()`` until done: the model scatter, the tasks and the results kept on the
workers. In-process ``model.predict`` with 1 and 2 threads is timed on the same data for reference.
The machine's load average is printed, and the task stream of one more job (compute seconds per
task, summed, against the job's wall time): when tasks take longer with more workers, the workers
were competing for cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def _time(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _chunks(n: int, chunk: int) -> tuple:
    return tuple(min(chunk, n - start) for start in range(0, n, chunk))


def _block(start: int, stop: int, timesteps: int, features: int) -> np.ndarray:
    """Rows ``start:stop`` of the benchmark's input (each block seeded by its first row)."""
    rng = np.random.default_rng(start)
    return rng.standard_normal((stop - start, timesteps, features)).astype(np.float32)


def _block_of(block_info=None) -> np.ndarray:
    """The block a map_blocks task should hold, made on the worker that runs it."""
    (start, stop), (_, timesteps), (_, features) = block_info[None]["array-location"]
    return _block(start, stop, timesteps, features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="sequences")
    parser.add_argument("--timesteps", type=int, default=10)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=1_000, help="sequences per block (task)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    import dask.array as da
    from distributed import Client, LocalCluster, get_task_stream, wait

    import fastgru as fg
    import fastgru.distributed as fgd
    from fastgru.layers import GRU, Input

    fg.set_random_seed(0)
    model = fg.Sequential([Input(shape=(args.timesteps, args.features)), GRU(args.units)])
    chunks = _chunks(args.n, args.chunk)
    bounds = np.cumsum((0,) + chunks)
    x = np.concatenate([_block(a, b, args.timesteps, args.features) for a, b in zip(bounds[:-1], bounds[1:])])
    shape = f"{args.n}x{args.timesteps}x{args.features} -> GRU({args.units}), blocks of {args.chunk}"
    print(f"{shape}; {os.cpu_count()} CPUs; load average before: {os.getloadavg()}")
    results: dict = {"shape": shape, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                     "load_before": os.getloadavg(), "runs": {}}

    def record(label: str, times: list[float]) -> None:
        median = statistics.median(times)
        results["runs"][label] = {"seconds": times, "median_s": median, "sequences_per_s": args.n / median}
        print(f"{label:28s} median {median:7.3f} s  {args.n / median:10,.0f} sequences/s  "
              f"(runs: {', '.join(f'{t:.3f}' for t in times)})")

    for threads in (1, 2):
        if threads > fg._threads.numba.config.NUMBA_NUM_THREADS:
            continue
        fg.set_num_threads(threads)
        model.predict(x[: args.chunk])  # warm-up
        record(f"in-process, {threads} thread(s)", _time(lambda: model.predict(x), args.repeats))

    for n_workers in args.workers:
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            # the same array, made on the workers block by block (as data already in the cluster)
            xd = da.map_blocks(_block_of, dtype=np.float32,
                               chunks=(chunks, (args.timesteps,), (args.features,))).persist()
            wait(xd)

            assert np.array_equal(xd[:: max(1, args.n // 7)].compute(), x[:: max(1, args.n // 7)])

            def job():
                out = fgd.predict(model, xd, client=client).persist()
                wait(out)
                return out

            out = job()  # warm-up: unpickle the model, load the kernels on every worker
            np.testing.assert_allclose(out.compute(), model.predict(x), rtol=0, atol=1e-6)
            label = f"dask, {n_workers} worker(s)"
            record(label, _time(job, args.repeats))
            with get_task_stream(client) as stream:  # one more job: where the time goes
                start = time.perf_counter()
                job()
                wall = time.perf_counter() - start
            tasks = [sum(e["stop"] - e["start"] for e in t["startstops"] if e["action"] == "compute")
                     for t in stream.data]
            results["runs"][label]["task_stream"] = {"wall_s": wall, "tasks": len(tasks),
                                                     "compute_s": sum(tasks), "mean_task_s": float(np.mean(tasks))}
            print(f"{'':28s} task stream of one job: {len(tasks)} tasks, {sum(tasks):.3f} s of compute in "
                  f"{wall:.3f} s wall ({np.mean(tasks) * 1e3:.1f} ms per task)")
    results["load_after"] = os.getloadavg()
    print(f"load average after: {results['load_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
