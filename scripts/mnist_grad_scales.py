#!/usr/bin/env python
"""Why a rule trained on one-hidden-layer MLPs fails on two: gradient scales and first-layer drift.

    python scripts/mnist_grad_scales.py                          # gradient scales at init
    python scripts/mnist_grad_scales.py --workdir=DIR            # ... and DIR/best's first layer

Prints, for the MNIST MLP with one and with two hidden layers of 20 sigmoid units (the paper's
initialization, N(0, 0.01^2)), the 10th/50th/90th percentiles of |gradient| of every parameter
tensor at initialization (8 tasks, one minibatch of 128) and the fraction below the log/sign
threshold exp(-p) (of the gradient divided by its tensor's RMS for a rule trained with
rule.normalize=tensor_rms), under which the paper's features are (-1, exp(p) g) and carry almost no
sign. With --workdir it runs DIR's trained rule for 100 steps on the same 8 tasks and prints,
at a few steps, the loss, the mean and the mean absolute value of the first layer's update (a
mean as large as the mean absolute value means every weight moved the same way: a drift that
does not depend on the gradient) and the fraction of saturated first-layer units (sigmoid
output below 0.05 or above 0.95 on 512 training images).
"""

import functools
import sys

from l2l_tf.cli import (  # noqa: E402
    parse_flags,
    quiet_tensorflow,
    run_main,
    workdir_config_flag_if_given,
)

quiet_tensorflow()

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained MNIST work directory (optional).")
_P = flags.DEFINE_float(
    "p", 10.0, "p of the log/sign threshold exp(-p); with --workdir, DIR's rule.preprocess_p."
)
_CONFIG = workdir_config_flag_if_given(sys.argv, "DIR's config.")

NUM_TASKS = 8
STEPS_SHOWN = (0, 1, 5, 10, 20, 50, 99)


def main(argv):
    del argv

    def go():
        import numpy as np
        import tensorflow as tf

        from l2l_tf.config import added_field
        from l2l_tf.experiments.l2l import training as l2l_training
        from l2l_tf.optimizers.lstm import NORMALIZATIONS
        from l2l_tf.problems.mnist import MNIST
        from l2l_tf.run import workdir as workdir_lib
        from l2l_tf.unroll import optimizee_step

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        config = _CONFIG.value if _CONFIG is not None else None
        p = config.rule.preprocess_p if config else _P.value
        rule = None
        if config:
            rule = l2l_training.build_learned_rule(config)
            info = workdir_lib.restore_best(rule, _WORKDIR.value)
            print(f"rule: {_WORKDIR.value}/best (meta-iteration {info['iteration']})")
        data = dict(config.data.items()) if config else {"download": False}
        init_seed, batch_seed = tf.constant([1, 2], tf.int64), tf.constant([3, 4], tf.int64)
        for hidden in ((20,), (20, 20)):
            family = MNIST(hidden_sizes=hidden, num_members=NUM_TASKS, data=data, log=lambda s: 0)
            if hidden == (20,):
                print(family.describe())
            params = family.init_params((), init_seed)
            batch = family.batch((), batch_seed)
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = tf.reduce_sum(family.member_losses(params, (), batch))
            print(f"hidden {hidden}: |gradient| at init (p10 / p50 / p90; below exp(-{p:g}))")
            normalize = NORMALIZATIONS[added_field(config, "rule.normalize") if config else "none"]
            for i, g in enumerate(tape.gradient(loss, params)):
                a = np.abs(g.numpy()).ravel()
                seen = np.abs(normalize(g).numpy()).ravel()  # what the preprocessing gets
                q = np.percentile(a, [10, 50, 90])
                kind = "w" if i % 2 == 0 else "b"
                print(
                    f"  layer {i // 2 + 1} {kind} {tuple(g.shape[1:])}: {q[0]:.1e} / {q[1]:.1e} / "
                    f"{q[2]:.1e}; {np.mean(seen < np.exp(-p)):.0%} below"
                    + (" after rule.normalize" if normalize is not NORMALIZATIONS["none"] else "")
                )
            if rule is None:
                continue
            images = family._images(family._x_train[:512])
            state = rule.init(params)
            step = tf.function(functools.partial(optimizee_step, family, rule))
            for t in range(100):
                batch = family.batch((), tf.stack([tf.constant(5, tf.int64), t]))
                losses, new, state = step(params, state, (), batch)
                if t in STEPS_SHOWN:
                    d = (new[0] - params[0]).numpy()
                    pre = tf.einsum("ni,mio->mno", images, new[0]) + new[1][:, None, :]
                    h = tf.sigmoid(pre).numpy()
                    print(
                        f"  step {t:3d}: loss {losses.numpy().mean():.3f}; first-layer update "
                        f"mean {d.mean():+.1e}, mean |.| {np.abs(d).mean():.1e}; "
                        f"{np.mean((h < 0.05) | (h > 0.95)):.0%} of first-layer units saturated"
                    )
                params = new

    run_main(go)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
