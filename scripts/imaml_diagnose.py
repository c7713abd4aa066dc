#!/usr/bin/env python
"""Measurements behind the iMAML diagnosis of issue 21 (docs/results/sinusoid.md, "iMAML").

    python scripts/imaml_diagnose.py [--lam=10] [--workdir=DIR ...] [--runs=DIR ...]

Prints three groups of numbers:

1. The implicit meta-gradient on a small case (one sinusoid task, a 1-10-10-1 MLP in float64),
   at the proximal optimum phi* = argmin L_support(phi) + lam/2 ||phi - theta||^2 (solved by
   Newton's method to machine precision): `IMAML.implicit_grad` (conjugate gradient) against
   (a) central finite differences of L_query(phi*(theta)), re-solving phi* at theta +- eps d,
   and (b) the unrolled gradient, differentiated through N steps of gradient descent on the
   proximal objective, for growing N.
2. For the sinusoid config as trained (one inner SGD step at rate alpha, lambda, cg_steps) at
   theta_0 and at the best theta of each --workdir: how stationary the one-step inner solution
   is for the proximal objective, the CG residual after every CG iteration, the curvature the
   step sees (alpha g^T H g / g^T g, the Newton step when it is 1), and how well the implicit
   meta-gradient points along the gradient of what is evaluated (the query loss after one SGD
   step, which second-order MAML computes exactly) compared with first-order MAML's.
3. With --runs: each run's best validation query MSE after its inner steps (the validation
   tasks, never the test tasks) and its iMAML settings, the lambda / CG / inner-step sweep.
"""

import json
import sys
from pathlib import Path

from l2l_tf.cli import parse_flags, quiet_tensorflow, run_main

quiet_tensorflow()

from absl import app, flags  # noqa: E402

_LAM = flags.DEFINE_float("lam", 10.0, "lambda of the small-case check (part 1).")
_WORKDIRS = flags.DEFINE_multi_string(
    "workdir", [], "Trained sinusoid work directories whose best theta part 2 measures."
)
_RUNS = flags.DEFINE_multi_string("runs", [], "Work directories summarized in part 3.")
_PARTS = flags.DEFINE_list("parts", ["1", "2", "3"], "Which parts to run.")
_CONFIG = flags.DEFINE_string(
    "config", "configs/imaml_sinusoid.py", "The iMAML config part 2 measures at theta_0."
)


def flat(params):
    import tensorflow as tf

    return tf.concat([tf.reshape(p, [p.shape[0], -1]) for p in params], axis=1)


def unflat(vector, like):
    import tensorflow as tf

    out, start = [], 0
    for p in like:
        size = int(tf.size(p[0]))
        out.append(tf.reshape(vector[:, start : start + size], p.shape))
        start += size
    return out


def support_grad(family, params, task, batch):
    """Per-member gradient of the (unregularized) loss on `batch`."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = tf.reduce_sum(family.member_losses(params, task, batch))
    return tape.gradient(loss, params)


def small_case_functions(family, task, support, query):
    """Compiled functions of one member's flat parameter vector w: (loss, grad, Hessian)."""
    import tensorflow as tf

    shapes = family.param_shapes()
    sizes = [int(np_prod(s)) for s in shapes]
    n = sum(sizes)

    def to_params(w):
        return [tf.reshape(p, [1, *s]) for p, s in zip(tf.split(w, sizes), shapes)]

    spec = [tf.TensorSpec([n], family.dtype)]

    @tf.function(input_signature=spec)
    def support_lgh(w):
        with tf.GradientTape() as outer:
            outer.watch(w)
            with tf.GradientTape() as inner:
                inner.watch(w)
                loss = tf.reduce_sum(family.member_losses(to_params(w), task, support))
            g = inner.gradient(loss, w)
        return loss, g, outer.jacobian(g, w)

    @tf.function(input_signature=spec)
    def query_lg(w):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = tf.reduce_sum(family.member_losses(to_params(w), task, query))
        return loss, tape.gradient(loss, w)

    return n, to_params, support_lgh, query_lg


def np_prod(shape):
    out = 1
    for s in shape:
        out *= int(s)
    return out


def proximal_optimum(support_lgh, theta, lam, tol=1e-12, max_iterations=40):
    """Damped Newton on F(w) = L_support(w) + lam/2 ||w - theta||^2 from w = theta.

    Returns (w*, |grad F(w*)|, Newton iterations).
    """
    import numpy as np

    def objective(w):
        loss, g, h = (t.numpy() for t in support_lgh(w))
        d = w - theta
        return loss + 0.5 * lam * d @ d, g + lam * d, h + lam * np.eye(len(w))

    w = theta.copy()
    f, g, h = objective(w)
    for it in range(max_iterations):
        if np.linalg.norm(g) < tol:
            return w, float(np.linalg.norm(g)), it
        low = np.linalg.eigvalsh(h)[0]
        shift = 0.0 if low > 1e-8 else 1e-8 - low + 1e-3 * lam
        step = np.linalg.solve(h + shift * np.eye(len(w)), g)
        t = 1.0
        while t > 1e-10:
            f_new, g_new, h_new = objective(w - t * step)
            if f_new <= f - 1e-4 * t * (g @ step):
                break
            t *= 0.5
        w, f, g, h = w - t * step, f_new, g_new, h_new
    return w, float(np.linalg.norm(g)), max_iterations


def smooth_sinusoid(**kw):
    """The sinusoid family with tanh instead of ReLU: a loss smooth everywhere."""
    import tensorflow as tf

    from l2l_tf.problems import Sinusoid

    class TanhSinusoid(Sinusoid):
        name = "sinusoid_tanh"

        def predict(self, params, x):
            h = x
            for i in range(len(self.layer_sizes)):
                h = tf.matmul(h, params[2 * i]) + params[2 * i + 1][:, None, :]
                if i < len(self.layer_sizes) - 1:
                    h = tf.tanh(h)
            return h

    return TanhSinusoid(**kw)


def part1_small_case(lam, activation):
    import numpy as np
    import tensorflow as tf

    from l2l_tf import seeding
    from l2l_tf.meta import IMAML
    from l2l_tf.meta.base import sample_episode
    from l2l_tf.optimizers import SGD
    from l2l_tf.problems import Sinusoid

    print(
        f"== 1. implicit gradient on a small case (1-10-10-1 {activation} MLP, K=10, "
        f"lambda={lam:g}) =="
    )
    make = smooth_sinusoid if activation == "tanh" else Sinusoid
    family = make(num_shots=10, batch_size=1, hidden_sizes=(10, 10), dtype=tf.float64)
    task, support, query, init_seed = sample_episode(family, seeding.task_seed(0, seeding.TEST, 3))
    theta_params = family.init_params(task, init_seed)
    n, to_params, support_lgh, query_lg = small_case_functions(family, task, support, query)
    theta = flat(theta_params)[0].numpy()
    w, stationarity, newton_its = proximal_optimum(support_lgh, theta, lam, max_iterations=40)
    h = support_lgh(tf.constant(w))[2].numpy()
    eig = np.linalg.eigvalsh(h)
    print(
        f"parameters {n}; proximal optimum by damped Newton: |grad F| {stationarity:.1e} after "
        f"{newton_its} iterations; Hessian of L_support at phi* in [{eig[0]:.3g}, {eig[-1]:.3g}]"
        f", so I + H/lambda is positive definite: {eig[0] > -lam}"
    )
    phi = to_params(tf.constant(w))
    learner = IMAML(family, [t[0] for t in theta_params], SGD(0.01), 1, lam=lam, cg_steps=n)
    g_query = query_lg(tf.constant(w))[1].numpy()
    exact = lam * np.linalg.solve(h + lam * np.eye(n), g_query)
    rows = []
    for k in (1, 2, 5, 10, 20, 50):
        learner.cg_steps = k
        v = flat(learner.implicit_grad(phi, task, support, query)[1])[0].numpy()
        rows.append((k, np.linalg.norm(v - exact) / np.linalg.norm(exact)))
    print(
        "IMAML.implicit_grad (CG) vs a dense solve of (I + H/lambda) v = grad L_query(phi*), "
        "relative error: " + ", ".join(f"{k} it {e:.1e}" for k, e in rows)
    )
    learner.cg_steps = n
    v = flat(learner.implicit_grad(phi, task, support, query)[1])[0].numpy()

    rng = np.random.default_rng(0)
    eps = 1e-5
    print(f"(a) d/de L_query(phi*(theta + e d)) by central differences (e = {eps:g}):")
    for trial in range(3):
        d = rng.normal(size=n)
        d /= np.linalg.norm(d)
        values = []
        for sign in (1, -1):
            w_s, res, _ = proximal_optimum(support_lgh, theta + sign * eps * d, lam)
            values.append(float(query_lg(tf.constant(w_s))[0]))
        fd = (values[0] - values[1]) / (2 * eps)
        print(
            f"  direction {trial}: implicit {v @ d:+.8f}  finite difference {fd:+.8f}  "
            f"relative error {abs(v @ d - fd) / abs(fd):.1e}"
        )

    print("(b) the unrolled gradient through N steps of gradient descent on the proximal problem:")
    rate = 1.0 / (lam + max(eig[-1], 0.0))  # stable: the proximal Hessian is below lam + h_max
    theta_var = tf.Variable(theta)

    @tf.function
    def unrolled(steps):
        with tf.GradientTape() as tape:
            p = tf.identity(theta_var)
            for _ in tf.range(steps):
                g = support_grad_second_order(family, to_params(p), task, support)
                p = p - rate * (flat(g)[0] + lam * (p - theta_var))
            loss = query_lg(p)[0]
        return tape.gradient(loss, theta_var), p

    def stationarity_at(p):
        g = support_lgh(tf.constant(p))[1].numpy()
        return np.linalg.norm(g + lam * (p - theta))

    for steps in (1, 10, 100, 1000):
        grad, p = unrolled(tf.constant(steps))
        grad = grad.numpy()
        rel = np.linalg.norm(grad - v) / np.linalg.norm(v)
        print(
            f"  N={steps:5d} (rate {rate:.3g}): |phi_N - phi*| {np.linalg.norm(p.numpy() - w):.1e}"
            f", |grad F(phi_N)| {stationarity_at(p.numpy()):.1e}"
            f", relative difference to the implicit gradient {rel:.2e}, cosine "
            f"{cosine(grad, v):.6f}"
        )


def support_grad_second_order(family, params, task, batch):
    """The support gradient, recorded for differentiation (the unrolled gradient)."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(params)
        loss = tf.reduce_sum(family.member_losses(params, task, batch))
    return tape.gradient(loss, params)


def cosine(a, b):
    import numpy as np

    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def lanczos_extremes(hvp, members, n, iterations=30, seed=0):
    """Estimates of the smallest and largest Hessian eigenvalue of every member, [members] each.

    `hvp` maps a [members, n] array to the members' Hessian-vector products; Lanczos with full
    reorthogonalization, so the extreme Ritz values converge quickly.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    q = rng.normal(size=(members, n))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    basis, alphas, betas = [q], [], []
    for j in range(iterations):
        w = hvp(basis[-1])
        alphas.append(np.sum(w * basis[-1], 1))
        for b in basis:  # full reorthogonalization
            w -= np.sum(w * b, 1, keepdims=True) * b
        beta = np.linalg.norm(w, axis=1)
        if j == iterations - 1:
            break
        betas.append(beta)
        basis.append(w / np.maximum(beta, 1e-30)[:, None])
    low, high = [], []
    for m in range(members):
        t = np.diag([a[m] for a in alphas])
        for j, bta in enumerate(betas):
            t[j, j + 1] = t[j + 1, j] = bta[m]
        e = np.linalg.eigvalsh(t)
        low.append(e[0])
        high.append(e[-1])
    return np.array(low), np.array(high)


def part2_config(config, label, workdir=None, num_batches=4, cg_variants=(1, 2, 5, 10)):
    import numpy as np
    import tensorflow as tf

    from l2l_tf import seeding
    from l2l_tf.experiments.init import training
    from l2l_tf.meta.base import sample_episode
    from l2l_tf.meta.imaml import conjugate_gradient
    from l2l_tf.run.workdir import restore_best

    cfg = config.meta
    family = training.build_family(config, cfg.meta_batch_size, split="val")
    learners = {
        name: training.build_learner(config, family, learner=name)
        for name in ("imaml", "maml", "fomaml")
    }
    if workdir is not None:
        source = training.build_learner(config, family)
        restore_best(source, workdir)
        for learner in learners.values():
            for v, s in zip(learner.init, source.init):
                v.assign(s)
    imaml = learners["imaml"]
    config_cg = imaml.cg_steps
    lam, alpha = imaml.lam, cfg.inner_learning_rate
    stats = {k: [] for k in ("station", "x_theta", "x_phi", "eig_low", "eig_high")}
    cg_res = []
    cos_task = {k: [] for k in (*cg_variants, "fomaml")}
    cos_mean = {k: [] for k in (*cg_variants, "fomaml")}
    amplification = {k: [] for k in cg_variants}
    for b in range(num_batches):
        episode = seeding.task_seed(config.seed, seeding.VALIDATION, 1000 + b)
        task, support, query, _ = sample_episode(family, episode)
        theta = imaml.initial_params()
        phi = imaml.adapt(task, support)
        g0 = flat(support_grad(family, theta, task, support)).numpy()
        g1 = flat(support_grad(family, phi, task, support)).numpy()
        resid = g1 + lam * (flat(phi).numpy() - flat(theta).numpy())
        stats["station"] += list(np.linalg.norm(resid, axis=1) / np.linalg.norm(g0, axis=1))
        for key, at, g in (("x_theta", theta, g0), ("x_phi", phi, g1)):
            hg = flat(imaml.hessian_vector_product(at, task, support, unflat(tf.constant(g), at)))
            stats[key] += list(alpha * np.sum(g * hg.numpy(), 1) / np.sum(g * g, 1))

        def hvp_flat(v, phi=phi, task=task, support=support):
            hv = imaml.hessian_vector_product(
                phi, task, support, unflat(tf.constant(v, family.dtype), phi)
            )
            return flat(hv).numpy()

        low, high = lanczos_extremes(hvp_flat, family.num_members, g1.shape[1])
        stats["eig_low"] += list(alpha * low)
        stats["eig_high"] += list(alpha * high)
        # CG on (I + H(phi)/lambda) v = grad L_query(phi), the residual after each iteration.
        gq = support_grad(family, phi, task, query)

        def matvec(v, phi=phi, task=task, support=support):
            hv = imaml.hessian_vector_product(phi, task, support, v)
            return [vi + hvi / lam for vi, hvi in zip(v, hv)]

        row = []
        for k in range(0, 11):
            x = conjugate_gradient(matvec, gq, k)
            r = flat([q - a for q, a in zip(gq, matvec(x))]).numpy()
            row.append(np.linalg.norm(r, axis=1) / np.linalg.norm(flat(gq).numpy(), axis=1))
        cg_res.append(np.stack(row))  # [11, members]
        # Per-task meta-gradients: iMAML's with k CG steps, MAML's exact one, FOMAML's.
        per_task = {}
        for k in cg_variants:
            imaml.cg_steps = k
            per_task[k] = flat(imaml.implicit_grad(phi, task, support, query)[1]).numpy()
        imaml.cg_steps = config_cg
        for name in ("maml", "fomaml"):
            learner = learners[name]
            with tf.GradientTape() as tape:
                tape.watch(theta)
                p = learner.adaptation(task, support, theta, 1, learner.second_order)[0]
                loss = tf.reduce_sum(family.member_losses(p, task, query))
            per_task[name] = flat(tape.gradient(loss, theta)).numpy()
        mean = {k: v.mean(0) for k, v in per_task.items()}
        for k in cos_task:
            cos_task[k] += [
                cosine(per_task[k][m], per_task["maml"][m]) for m in range(family.num_members)
            ]
            cos_mean[k].append(cosine(mean[k], mean["maml"]))
        for k in cg_variants:
            amplification[k] += list(
                np.linalg.norm(per_task[k], axis=1) / np.linalg.norm(per_task["fomaml"], axis=1)
            )
    cg_res = np.concatenate(cg_res, axis=1)
    x0 = np.array(stats["x_theta"])
    print(
        f"-- {label}: one inner SGD step at {alpha:g}, lambda {lam:g}, cg_steps {config_cg} "
        f"({num_batches} validation meta-batches of {family.num_members} tasks) --"
    )
    print(
        "stationarity of the one-step solution, |grad L_s(phi) + lambda (phi - theta)| / "
        f"|grad L_s(theta)|: median {np.median(stats['station']):.3f}, "
        f"90th percentile {np.percentile(stats['station'], 90):.3f}  (0 at the proximal optimum)"
    )
    print(
        "curvature along the step, alpha g^T H g / g^T g at theta: median "
        f"{np.median(x0):.3f}, tasks above 1: {np.mean(x0 > 1):.0%}, above 2: "
        f"{np.mean(x0 > 2):.0%}; at phi: median {np.median(stats['x_phi']):.3f}"
    )
    low, high = np.array(stats["eig_low"]), np.array(stats["eig_high"])
    print(
        "extreme eigenvalues of alpha H(phi) (30 Lanczos steps): smallest median "
        f"{np.median(low):.2f} (min {low.min():.2f}; tasks below -0.5: {np.mean(low < -0.5):.0%}"
        f", below -1, where I + H/lambda is indefinite: {np.mean(low < -1):.0%}), largest "
        f"median {np.median(high):.2f} (max {high.max():.2f})"
    )
    med = np.median(cg_res, axis=1)
    print(
        "CG residual |b - A x_k| / |b| after k iterations (median over tasks): "
        + ", ".join(f"{k}: {r:.3f}" for k, r in enumerate(med))
    )
    print(
        "cosine with MAML's exact one-step meta-gradient (the gradient of what is evaluated), "
        "per task (median) / of the meta-batch mean; |v_i| / |FOMAML's g_i| (median, max):"
    )
    for k in cos_task:
        name = "FOMAML" if k == "fomaml" else f"iMAML, {k} CG steps"
        amp = (
            ""
            if k == "fomaml"
            else f"; |v|/|g| {np.median(amplification[k]):.2f}, {np.max(amplification[k]):.2f}"
        )
        print(f"  {name:20s} {np.median(cos_task[k]):.3f} / {np.mean(cos_mean[k]):.3f}" + amp)


def part3_runs(runs):
    print("== 3. best validation query MSE after the inner steps (validation tasks only) ==")
    print("| run | learner | lambda | cg_steps | lr schedule | iterations | best val MSE (at it) |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        run = Path(run)
        config = json.loads((run / "config.json").read_text())
        meta = config["meta"]
        info_path = run / "best" / "info.json"
        if not info_path.is_file():
            print(f"| {run.name} | (no best/) |")
            continue
        info = json.loads(info_path.read_text())
        print(
            f"| {run.name} | {meta['learner']} | {meta.get('lam', '-')} | "
            f"{meta.get('cg_steps', '-')} | {meta['lr_schedule']} | "
            f"{config['train']['num_meta_iterations']} | {info['val_query_loss_mean']:.3f} "
            f"({info['iteration']}) |"
        )


def main(argv):
    del argv

    def go():
        import importlib

        import tensorflow as tf

        from l2l_tf import config as config_lib
        from l2l_tf.errors import UserError

        tf.config.threading.set_intra_op_parallelism_threads(1)
        if "1" in _PARTS.value:
            for activation in ("tanh", "relu"):
                part1_small_case(_LAM.value, activation)
        if "2" not in _PARTS.value:
            if _RUNS.value and "3" in _PARTS.value:
                part3_runs(_RUNS.value)
            return
        print("== 2. the sinusoid config's one-step inner solution and its meta-gradient ==")
        module = _CONFIG.value.removesuffix(".py").replace("/", ".")
        try:
            config = importlib.import_module(module).get_config()
        except ModuleNotFoundError:
            raise UserError(f"--config {_CONFIG.value!r} is not a config module") from None
        part2_config(config, f"theta_0 of {_CONFIG.value}")
        for workdir in _WORKDIRS.value:
            saved = config_lib.load_workdir_config(workdir)
            saved.meta.learner = "imaml"  # measure iMAML's gradient at any learner's theta
            for field in ("lam", "cg_steps"):
                saved.meta[field] = saved.meta.get(field, config.meta[field])
            learner = config_lib.load_workdir_config(workdir).meta.learner
            part2_config(saved, f"best theta of {workdir} ({learner})", workdir)
        if _RUNS.value and "3" in _PARTS.value:
            part3_runs(_RUNS.value)

    run_main(go)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    app.run(main, flags_parser=parse_flags)
