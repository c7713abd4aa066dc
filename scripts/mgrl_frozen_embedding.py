#!/usr/bin/env python
"""Diagnostic of the fourth MGRL tuning round: the eta embedding kept but not trained.

    python scripts/mgrl_frozen_embedding.py '[{"tag": "FROZEN16 fixed 0.98 0.95", "n": 20,
                                            "eta": [0.98, 0.95]}]'

Runs items like scripts/mgrl_tune.py (same "o", "eta", "seed", "n" keys) with the agent's
embedding e = W_eta eta + b_eta still concatenated to the observation but frozen at its
initialization: W_eta, b_eta and the embedding rows of both networks' first-layer weights get
a zero gradient (held by tf.stop_gradient, plus 0 * p so that the gradient is 0 rather than
None). For a fixed eta the embedding is then a constant offset of the first-layer biases that
adds no trainable parameters, which separates the effect of training those constant channels
(under Adam, extra bias parameters of every first-layer unit) from that of their presence.
"""

import sys

import mgrl_tune  # noqa: E402
import tensorflow as tf  # noqa: E402

from l2l_tf.rl import a2c  # noqa: E402

_call = a2c.ActorCritic.__call__


def _frozen(p):
    return tf.stop_gradient(p) + 0.0 * p


def frozen_call(self, params, observations, eta):
    params = list(params)
    params[0], params[1] = _frozen(params[0]), _frozen(params[1])
    k = self.observation_size
    first_value_layer = 2 + 2 * (len(self._policy_sizes) - 1)
    for i in (2, first_value_layer):
        params[i] = tf.concat([params[i][:k], _frozen(params[i][k:])], axis=0)
    return _call(self, params, observations, eta)


def main(argv):
    a2c.ActorCritic.__call__ = frozen_call
    mgrl_tune.main(argv)


if __name__ == "__main__":
    main(sys.argv)
