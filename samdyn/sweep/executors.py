"""Where chunks run: in this process (the default) or on a Dask distributed cluster.

An executor has one method, ``map(spec, chunk_ids)``, which yields ``(chunk_id, dataset)`` as chunks
finish, in any order. The caller (:func:`samdyn.sweep.run`) is the only writer of the store: a
worker computes :func:`~samdyn.sweep.work.run_chunk` and sends the chunk's dataset back. So the
workers need no shared file system (they may sit on other machines), there are never two writers,
and a worker that dies leaves nothing half-written; the price is that results travel over the
network, which is small next to the compute for the streamed statistics a sweep keeps.

Dask (optional extra ``samdyn[dask]``): ``Dask(workers=N)`` starts a ``LocalCluster`` of N worker
processes (one thread each, on 127.0.0.1; each worker's JAX uses one CPU device,
``SAMDYN_CPU_DEVICES=1``, so N workers do not oversubscribe N cores, and imports samdyn from where
this process does); ``Dask(scheduler=ADDR)``
connects to a running scheduler (e.g. one started by ``dask-jobqueue`` on a SLURM cluster). A task
whose worker dies is recomputed elsewhere by the scheduler; ``retries`` re-runs a task that raised.
Chunks are deterministic, so a recomputed chunk has the same bits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

from .. import checks
from .work import run_chunk

__all__ = ["InProcess", "Dask"]


class InProcess:
    """Run chunks one after another in this process."""

    def map(self, spec, chunk_ids: Iterable[int]) -> Iterator:
        for chunk_id in chunk_ids:
            yield chunk_id, run_chunk(spec, chunk_id)


class Dask:
    """Run chunks on a Dask distributed cluster: a new local one (``workers``) or a running one (``scheduler``).

    Args:
        workers: number of local worker processes to start (one thread each, on 127.0.0.1).
        scheduler: address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
        retries: times a chunk that raised is retried (a dead worker's chunks are always rerun).
        env: extra environment variables for local workers.

    While :meth:`map` runs, ``self.client`` is the ``distributed.Client``.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, *, retries: int = 3,
                 env: dict | None = None):
        if (workers is None) == (scheduler is None):
            raise ValueError("Dask: give exactly one of workers= (a local cluster) or scheduler= (an address)")
        if workers is not None:
            checks.integer("Dask", "workers", workers, low=1)
        if scheduler is not None and not isinstance(scheduler, str):
            checks.fail("Dask", "scheduler", "an address string such as 'tcp://host:8786'", scheduler, TypeError)
        self.workers, self.scheduler = workers, scheduler
        self.retries = checks.integer("Dask", "retries", retries, low=0)
        # workers import samdyn from where this process does, installed or not
        here = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        self.env = {"SAMDYN_CPU_DEVICES": "1", "PYTHONPATH": path, **(env or {})}
        self.client = None

    def map(self, spec, chunk_ids: Iterable[int]) -> Iterator:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("the Dask executor needs dask[distributed]: pip install 'samdyn[dask]'") from err
        cluster = None
        if self.workers is not None:
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, worker_dashboard_address=None,
                                   silence_logs=logging.ERROR, env=self.env)
        try:
            with Client(cluster if cluster is not None else self.scheduler) as client:
                self.client = client
                futures = {client.submit(run_chunk, spec, c, key=f"samdyn-{spec.hash[:12]}-chunk-{c}",
                                         retries=self.retries, pure=False): c for c in chunk_ids}
                for future in as_completed(futures):
                    yield futures[future], future.result()
                    future.release()
        finally:
            self.client = None
            if cluster is not None:
                cluster.close()
