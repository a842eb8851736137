"""How to spend a small CPU on pretraining runs: one run with all threads, or several runs side by side with
fewer threads each? Times the bundled series' training step (mae_fmnist_tiny, batch 256, norm-pix, 75% random
masks, the fused AdamW step train.py uses) as (a) one process with ``--cores`` threads and (b) ``--cores``
processes with one thread each, running at the same time, and prints the images/s of each and the ratio of (b)'s
total over (a). The two layouts alternate ``--repeats`` times; the ratio is the median of the per-repeat ratios.
Run it on idle cores (it measures the whole machine).

    python bench/thread_split.py [--cores 2] [--seconds 20] [--repeats 3]
"""
import argparse
import multiprocessing as mp
import statistics
import time

from benchlib import write


def _worker(threads: int, seconds: float, batch: int, start, out):
    import torch

    from mae_core.model import build_model
    from mae_core.optim import make_optimizer, param_groups
    from mae_core.train import train_step
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model("mae_fmnist_tiny", norm_pix_loss=True).train()
    opt = make_optimizer(param_groups(model, 0.05), 1e-3)
    x = torch.randn(batch, 1, 28, 28)
    train_step(model, opt, x, check_finite=False)  # warm-up
    start.wait()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        train_step(model, opt, x, check_finite=False)
        n += batch
    out.put(n / (time.perf_counter() - t0))


def layout(procs: int, threads: int, seconds: float, batch: int) -> list:
    """Images/s of each of ``procs`` processes with ``threads`` threads each, started together."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(procs + 1), ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(threads, seconds, batch, start, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    start.wait()
    rates = [out.get() for _ in ps]
    for p in ps:
        p.join()
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    one, split, ratios = [], [], []
    for r in range(args.repeats):
        a = sum(layout(1, args.cores, args.seconds, args.batch))
        b = layout(args.cores, 1, args.seconds, args.batch)
        one.append(a)
        split.append(sum(b))
        ratios.append(sum(b) / a)
        print(f"repeat {r + 1}: 1 process x {args.cores} threads {a:.0f} img/s; {args.cores} processes x 1 thread "
              f"{' + '.join(f'{v:.0f}' for v in b)} = {sum(b):.0f} img/s ({sum(b) / a:.2f}x)", flush=True)
    res = {"cores": args.cores, "batch": args.batch, "seconds": args.seconds,
           "one_process_img_s": statistics.median(one), "split_total_img_s": statistics.median(split),
           "split_over_one": statistics.median(ratios)}
    print(f"median: one process {res['one_process_img_s']:.0f} img/s, {args.cores} side by side "
          f"{res['split_total_img_s']:.0f} img/s in total: {res['split_over_one']:.2f}x")
    write("thread_split", res)


if __name__ == "__main__":
    main()
