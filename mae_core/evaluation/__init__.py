"""Evaluation: what the bundled models show and how it is measured. Sweeps of the mask ratio and strategy
(``sweep``), fine-tuning against probing (``finetune``), measuring a model card (``cards``), which cards form a
comparison (``comparisons``), every sentence that reads a result (``readings``), the charts (``figures``), and the
results computed once and shipped or cached (``results``, ``precompute``). Built on the core library only."""
