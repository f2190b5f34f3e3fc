"""Data-parallel training (gloo, CPU): 2 processes equal 1 process with the same global batch."""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from torch.utils.data import DistributedSampler

from gcnretrieval.config import load_config
from gcnretrieval.training import Trainer, build_experiment, distributed
from gcnretrieval.training.trainer import _training_batches

# BatchNorm statistics over the global batch and the gathered losses are summed across ranks
# in another order than one process sums them: equal up to float32 rounding, hence the
# tolerances. After one epoch every tensor agrees to 2e-7; after the second, parameters to
# 1.3e-6 and the BatchNorm running statistics, which accumulate every batch's rounded mean
# and variance, to 5.5e-6 (AVX-512 kernels) and 1.3e-5 (ATEN_CPU_CAPABILITY=default) on an
# Intel Xeon, against weights that move by 0.7-0.8. The optimizer is SGD with momentum: its
# update is linear in the gradient. Adam's first steps move every weight by about lr *
# sign(gradient), so a gradient that is zero up to rounding can flip a step of size lr; with
# Adam the two runs agree only up to that amplified rounding.
ATOL = 1e-5
STATISTICS_ATOL = 1e-4


def _tolerance(key: str) -> float:
    return STATISTICS_ATOL if key.endswith(("running_mean", "running_var")) else ATOL


def _recipe(batch_size: int) -> dict:
    return {
        "run": {"name": "ddp", "seed": 7},
        "data": {"source": "synthetic", "synthetic": {"num_train": 22, "num_test": 6, "num_labels": 5,
                                                      "image_dim": 16, "text_dim": 12}},
        "graph": {"kind": "cooccurrence", "node_features": "random", "node_feature_dim": 6, "threshold": 0.3},
        "encoder": {"name": "l2gcn", "num_layers": 2},
        "model": {"common_dim": 8},
        "train": {"batch_size": batch_size, "epochs": 2, "device": "cpu", "lr": 1e-2, "optimizer": "sgd"},
        "eval": {"select_on": "test"},
    }


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v.detach().clone() for k, v in trainer.model.state_dict().items()}
    state.update({f"objective.{k}": v.detach().clone() for k, v in trainer.objective.state_dict().items()})
    return state


def _train_and_save(rank: int, out_file: str, batch_size: int) -> None:
    trainer = Trainer(build_experiment(load_config(_recipe(batch_size))))
    history = trainer.fit()
    if rank == 0:
        torch.save({"state": _state(trainer), "history": history,
                    "bn_kind": type(trainer.model.image_projector.norm).__name__}, out_file)



def _spawn_two(worker, *args) -> None:
    """Run ``worker(rank, 2, *args)`` in two spawned processes and wait for both."""
    mp.start_processes(worker, args=(2, *args), nprocs=2, join=True, start_method="spawn")

def _worker(rank: int, world: int, init_file: str, out_file: str, batch_size: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    succeeded = False
    try:
        _train_and_save(rank, out_file, batch_size)  # the trainer (and its DDP wrapper) ends here
        succeeded = True
    finally:
        distributed.shutdown(wait_for_others=succeeded)


def _single(batch_size: int) -> tuple[dict[str, torch.Tensor], list[dict]]:
    trainer = Trainer(build_experiment(load_config(_recipe(batch_size))))
    history = trainer.fit()
    return _state(trainer), history


@pytest.mark.parametrize("batch_size", [8, 6])  # 22 pairs: last batches of 6 (3 + 3) and of 4 (2 + 2)
def test_two_processes_match_one(tmp_path, batch_size):
    out_file = str(tmp_path / "rank0.pt")
    _spawn_two(_worker, str(tmp_path / "init"), out_file, batch_size)
    result = torch.load(out_file, weights_only=False)
    assert result["bn_kind"] == "GlobalBatchNorm1d"
    expected, history = _single(batch_size)
    assert set(result["state"]) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(result["state"][key].double(), value.double(), atol=_tolerance(key), rtol=0,
                                   msg=key)
    # something was learnt: the parameters moved away from their initial values
    initial = Trainer(build_experiment(load_config(_recipe(batch_size))))
    moved = max(float((expected[k].double() - v.double()).abs().max())
                for k, v in _state(initial).items() if v.is_floating_point())
    assert moved > 100 * STATISTICS_ATOL
    for a, b in zip(result["history"], history):
        assert a["loss_total"] == pytest.approx(b["loss_total"], abs=1e-5)
        assert a["test_avg_map"] == pytest.approx(b["test_avg_map"], abs=1e-6)


@pytest.mark.parametrize("num_pairs, batch_size", [(22, 8), (22, 6), (20, 4)])
def test_ranks_share_out_the_batches_of_one_process(num_pairs, batch_size):
    """Rank r's i-th batch and the other ranks' together are the single process's i-th batch."""
    pairs = range(num_pairs)

    def batches(world: int, rank: int) -> list[list[int]]:
        sampler = DistributedSampler(pairs, num_replicas=world, rank=rank, shuffle=True, seed=7)
        sampler.set_epoch(3)
        return list(_training_batches(sampler, batch_size // world, drop_last=False))

    single = batches(1, 0)
    shares = [batches(2, rank) for rank in range(2)]
    assert [len(b) for b in shares[0]] == [len(b) for b in shares[1]]  # every rank steps the same number of times
    assert [sorted(a + b) for a, b in zip(*shares)] == [sorted(batch) for batch in single]
    assert sorted(i for batch in single for i in batch) == list(pairs)


def test_single_process_has_no_wrapper():
    assert distributed.world_size() == 1 and distributed.rank() == 0
    trainer = Trainer(build_experiment(load_config(_recipe(8))))
    assert trainer.step_module is None
    assert os.environ.get("WORLD_SIZE", "1") == "1" or not dist.is_initialized()


def _run_worker(rank: int, world: int, init_file: str, run_dir: str, epochs: int, resume: bool) -> None:
    from gcnretrieval.runner import run

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    succeeded = False
    try:
        result = run(_recipe(6), {"train.epochs": epochs, "train.keep_last_checkpoint": True}, out=run_dir,
                     resume=resume, progress=False)
        assert set(result.test) == {"i2t_map", "t2i_map", "avg_map"}  # every rank gets rank 0's evaluation
        succeeded = True
    finally:
        distributed.shutdown(wait_for_others=succeeded)


def test_two_process_run_resumes_and_matches_one(tmp_path):
    from gcnretrieval.runner import run
    from gcnretrieval.training import RunDirectory

    two = tmp_path / "two"
    _spawn_two(_run_worker, str(tmp_path / "init1"), str(two), 1, False)
    _spawn_two(_run_worker, str(tmp_path / "init2"), str(two), 2, True)
    rows = (two / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2  # written once (rank 0), epoch 1 then the resumed epoch 2
    one = tmp_path / "one"
    run(_recipe(6), {"train.epochs": 2, "train.keep_last_checkpoint": True}, out=one, progress=False)
    a = RunDirectory(two).load_checkpoint("last")["model"]
    b = RunDirectory(one).load_checkpoint("last")["model"]
    for key, value in b.items():
        torch.testing.assert_close(a[key].double(), value.double(), atol=_tolerance(key), rtol=0, msg=key)


def _indivisible_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    from gcnretrieval.errors import ConfigError

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        try:
            Trainer(build_experiment(load_config(_recipe(9))))
            message = "no error"
        except ConfigError as err:
            message = str(err)
        if rank == 0:
            with open(out_file, "w") as handle:
                handle.write(message)
    finally:
        distributed.shutdown(wait_for_others=True)


def test_a_batch_the_processes_cannot_share_equally_is_refused(tmp_path):
    out_file = tmp_path / "message.txt"
    _spawn_two(_indivisible_worker, str(tmp_path / "init"), str(out_file))
    assert out_file.read_text() == ("train.batch_size = 9 must be divisible by the number of processes (2); "
                                    "every process takes an equal share of each batch")


def _ablation_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        flags = {}
        for condition in ("all", "cs_only"):
            recipe = _recipe(8)
            recipe["loss"] = {"condition": condition}
            trainer = Trainer(build_experiment(load_config(recipe)))
            trainer.fit()  # with cs_only, the discriminators and the label encoder get no gradient
            flags[condition] = trainer.step_module.find_unused_parameters
            del trainer
        if rank == 0:
            torch.save(flags, out_file)
    finally:
        distributed.shutdown(wait_for_others=True)


def test_ddp_searches_unused_parameters_only_when_a_condition_drops_a_term(tmp_path):
    out_file = tmp_path / "flags.pt"
    _spawn_two(_ablation_worker, str(tmp_path / "init"), str(out_file))
    assert torch.load(out_file) == {"all": False, "cs_only": True}
