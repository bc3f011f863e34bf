"""The model side: data sets, training, folding, the model and teacher files, the golden model, and
a training run end to end (:mod:`model.pipeline`).

NumPy only; nothing here imports amaranth.

A trained model depends on the BLAS thread count (a product split across threads can sum in
another order): a program that trains puts BLAS on one thread before it loads NumPy, as ``bnn``
does (:func:`bnn.cli.use_one_blas_thread`).
"""
