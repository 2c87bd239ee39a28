"""Neural networks trained with ``samdyn.optim``'s step: pure-JAX models, offline data, vmapped training.

>>> import samdyn as sd
>>> from samdyn import nets
>>> data = nets.datasets.teacher_student(n_train=64, n_test=32, in_dim=3, cache=False)
>>> res = nets.train(nets.mlp(3, (8,), 1, task="regression"), data, sd.optim.sam(),
...                  sd.optim.hparams(lr=0.05, rho=[0.0, 0.05]), steps=20, batch_size=16, seeds=2)
>>> res.final("train_loss").shape
(2, 2)
"""

from . import datasets, models, training
from .datasets import Dataset
from .models import ACTIVATIONS, Model, accuracy, cnn1d, deep_linear, loss_fn, mlp, square_toy
from .training import MONITOR_RECORDS, RECORDS, TrainResult, TrapMonitor, minibatch_indices, run_keys, train

__all__ = [
    "datasets", "models", "training", "Dataset", "Model", "ACTIVATIONS", "mlp", "cnn1d", "square_toy",
    "deep_linear", "loss_fn", "accuracy", "train", "TrainResult", "TrapMonitor", "RECORDS", "MONITOR_RECORDS", "run_keys",
    "minibatch_indices",
]
