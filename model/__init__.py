"""The model side: data sets, training, folding, the model and teacher files, the golden model, and
a training run end to end (:mod:`model.pipeline`).

NumPy only; nothing here imports amaranth.
"""

import os

# A trained model must not depend on the machine's BLAS thread count (a product split across
# threads can sum in another order: issue 9 measured digits at 96.67% with two threads and 97.11%
# with one on a machine where OpenBLAS threaded). One thread, set before NumPy loads its BLAS; on a
# busy 2-core machine it is also the faster setting.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"
