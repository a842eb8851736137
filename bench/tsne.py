"""t-SNE side by side on encoder features of Fashion-MNIST (after PCA to 50 dims): what the app uses (up to
mae_core.tsne.EXACT_MAX points: exact forces compiled with numba, mae_core.embed.TSNE_SCHEDULE), the same schedule
with openTSNE's Barnes-Hut (what the app uses above that size), openTSNE's defaults (Barnes-Hut) and
scikit-learn's TSNE, the baseline. Prints wall time, the speed-up of the first engine over the others in the same
process, and the KL divergence of every result measured the same way: exact (all N^2 pairs) against one affinity
matrix (openTSNE's exact perplexity-30 affinities), so a faster result cannot hide a worse map. Then the time of
a revisit of the Embeddings page with the same settings (AppTest, everything cached).

    python bench/tsne.py [--sizes 2000,5000] [--model fmnist_r75] [--repeats 3]
    python bench/tsne.py --sizes 10000,20000 --engines app,bh_schedule --repeats 1   # where exact stops paying
Target on 2 cores: 5,000 points in <= 8 s (set where scikit-learn took 16.5 s, i.e. >= 2.1x faster than
scikit-learn); a cached revisit <= 0.5 s.
"""
import argparse
import statistics
import time

import numpy as np
import torch

from benchlib import ROOT, write

from mae_core.checkpoints import load_model
from mae_core.data import find_fashion_mnist, load_fashion_mnist, load_fashion_mnist_subset
from mae_core.embed import TSNE_SCHEDULE, encode, project, tsne_opentsne
from mae_core.tsne import kl_divergence  # exact, all N^2 pairs; tests/test_tsne.py checks it against a dense sum


def run_app(x, seed):
    return project(x, "tsne", seed=seed, perplexity=30.0, n_jobs=2)


def run_bh_schedule(x, seed):
    return tsne_opentsne(x, 30.0, seed, n_jobs=2)[0]


def run_opentsne_defaults(x, seed):
    from openTSNE import TSNE
    return np.asarray(TSNE(n_components=2, perplexity=30, random_state=seed, n_jobs=2, initialization="pca",
                           negative_gradient_method="bh", verbose=False).fit(x))


def run_sklearn(x, seed):
    from sklearn.manifold import TSNE
    return TSNE(n_components=2, perplexity=30, random_state=seed, init="pca", learning_rate="auto",
                n_jobs=2).fit_transform(x)


ENGINES = {"app": run_app, "bh_schedule": run_bh_schedule, "openTSNE_defaults": run_opentsne_defaults,
           "sklearn": run_sklearn}


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def page_revisit(n: int, repeats: int) -> float:
    """Median time of a rerun of the Embeddings page whose features and projection are already cached."""
    import os
    import tempfile
    from streamlit.testing.v1 import AppTest
    os.environ.setdefault("MAE_CACHE_DIR", tempfile.mkdtemp())
    os.environ.setdefault("MAE_RUNS_DIR", tempfile.mkdtemp())
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=600)
    at.run()
    at.switch_page(str(ROOT / "app" / "views" / "embeddings.py"))
    at.session_state["emb_n"] = n
    at.run()  # encodes and projects once
    assert not at.exception, at.exception
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2000,5000")
    ap.add_argument("--model", default="fmnist_r75")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of " + ", ".join(ENGINES))
    ap.add_argument("--no-revisit", action="store_true", help="skip the page-revisit timing")
    ap.add_argument("--out", default="tsne", help="results file name under bench/results")
    args = ap.parse_args()
    engines = args.engines.split(",")
    torch.set_num_threads(2)
    from openTSNE import affinity
    from sklearn.decomposition import PCA
    model, _ = load_model(args.model)
    if find_fashion_mnist():  # the test split first, then training images for sizes above 10,000
        images = torch.cat([load_fashion_mnist("test").images, load_fashion_mnist("train").images])
    else:
        images = load_fashion_mnist_subset().images
    results = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        feats = encode(model, images[:n], "both")
        x = PCA(n_components=50, random_state=0).fit_transform(feats).astype(np.float32)
        P = affinity.PerplexityBasedNN(x, perplexity=30, method="exact", n_jobs=2, random_state=0).P
        row = {}
        for name in engines:
            runs = [timed(ENGINES[name], x, seed) for seed in range(args.repeats)]
            row[name] = {"median_s": statistics.median(r[0] for r in runs),
                         "median_kl": statistics.median(kl_divergence(P, r[1]) for r in runs),
                         "runs_s": [r[0] for r in runs]}
        for other in engines[1:]:
            row[f"speedup_{engines[0]}_vs_{other}"] = row[other]["median_s"] / row[engines[0]]["median_s"]
        results[n] = row
        print(f"{n:6d} points:  " + "   ".join(f"{k} {row[k]['median_s']:5.1f} s (KL {row[k]['median_kl']:.3f})"
                                               for k in engines), flush=True)
        if len(engines) > 1:
            print("        -> " + ", ".join(f"{engines[0]} {row[f'speedup_{engines[0]}_vs_{o}']:.2f}x {o}"
                                             for o in engines[1:]), flush=True)
    revisit = None
    if not args.no_revisit:
        revisit = page_revisit(2000, args.repeats)
        print(f"Embeddings page revisit (2,000 points, all cached): {revisit:.2f} s")
    print("->", write(args.out, {"model": args.model, "pca_dims": 50, "perplexity": 30, "repeats": args.repeats,
                                 "schedule": TSNE_SCHEDULE, "kl": "exact, against openTSNE's exact affinities",
                                 "results": results, "page_revisit_s": revisit}))


if __name__ == "__main__":
    main()
