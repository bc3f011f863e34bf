"""The model side: data sets, training, folding, the model file and the golden model.

NumPy only; nothing here imports amaranth.
"""
