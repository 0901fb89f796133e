"""train_cached: an identical run is reused (not retrained); a changed config or data is trained anew."""

from __future__ import annotations

import json

from ftlab import data
from ftlab.train import TrainConfig, train_cached, training_key


def _cfg(**kw) -> TrainConfig:
    args = dict(max_steps=3, eval_steps=0, save_steps=3, logging_steps=1, report_to="none",
                per_device_train_batch_size=8)
    return TrainConfig(**{**args, **kw})


def test_train_cached_reuses_an_identical_run(tmp_path):
    rows = data.support_splits(0)["train"][:24]
    first = train_cached(_cfg(), rows, cache=tmp_path)
    assert not first.cached and first.global_step == 3
    assert (tmp_path / training_key(_cfg(), rows) / "train_result.json").exists()
    assert not list((tmp_path / training_key(_cfg(), rows)).glob("checkpoint-*"))
    again = train_cached(_cfg(output_dir="elsewhere", report_to="tensorboard"), list(rows), cache=tmp_path)
    assert again.cached and again.adapter_dir == first.adapter_dir and again.train_loss == first.train_loss
    # Another learning rate, or other data, is another run.
    assert training_key(_cfg(learning_rate=1e-3), rows) != training_key(_cfg(), rows)
    assert training_key(_cfg(), rows[:-1]) != training_key(_cfg(), rows)


def test_a_half_written_run_is_trained_again(tmp_path):
    rows = data.support_splits(0)["train"][:16]
    folder = tmp_path / training_key(_cfg(), rows)
    folder.mkdir(parents=True)
    (folder / "junk").write_text("a run killed halfway leaves no train_result.json")
    res = train_cached(_cfg(), rows, cache=tmp_path)
    assert not res.cached and not (folder / "junk").exists()
    assert json.loads((folder / "train_result.json").read_text())["global_step"] == 3


def test_notebooks_04_06_and_11_ask_for_one_support_adapter():
    """04's own TrainConfig (its defaults, its wording of the data) and train_recipe("support") at the toy's size
    defaults (06 and 11) have one cache key: a fresh ``ftlab run`` trains the support adapter once."""
    from ftlab.train import with_size_defaults
    from ftlab.train.cache import recipe_config

    splits = data.support_splits(0)
    sized = with_size_defaults("ftlab/toy-llama", learning_rate=0.0, epochs=0.0)
    nb04 = TrainConfig(learning_rate=sized["learning_rate"], num_train_epochs=sized["epochs"], max_steps=-1,
                       per_device_train_batch_size=16, max_length=sized["max_length"], eval_steps=32, save_steps=64,
                       overfit_patience=3, report_to="tensorboard", output_dir="runs/04",
                       data_version="Harbor & Pine support v1 (seed 0)")
    recipe = recipe_config("support", learning_rate=sized["learning_rate"], num_train_epochs=sized["epochs"],
                           max_steps=-1, seed=0, quantization="4bit")
    assert training_key(nb04, splits["train"], splits["validation"]) == \
        training_key(recipe, splits["train"], splits["validation"])
    other = recipe_config("support", learning_rate=sized["learning_rate"], num_train_epochs=2.0)  # 11's old SFT
    assert training_key(other, splits["train"], splits["validation"]) != \
        training_key(recipe, splits["train"], splits["validation"])
