"""Error mapping of the command lines: only the project's user-error types become one line with exit 2.

Run in-process through the same ``hydra_entry`` the console scripts use, on the ``verify`` config (it composes
without data). A bug (any other exception, ``ValueError`` included) must keep its traceback and exit 1.
"""

from __future__ import annotations

import sys

import pytest
from hydra.errors import InstantiationException

from data_gen.solvers import ConfigError
from data_gen.writer import GenerationError
from ssl_pde.core.cli import check_overrides, hydra_entry
from ssl_pde.core.errors import DataError, DivergenceError, UserError
from ssl_pde.data.schema import SchemaError


def _run(monkeypatch, capsys, exc: BaseException) -> tuple[int, str]:
    def task(cfg):
        raise exc

    monkeypatch.setattr(sys, "argv", ["ssl-pde-verify"])
    with pytest.raises(SystemExit) as info:
        hydra_entry("verify", task)()
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "exc",
    [
        UserError("bad value 3"),
        SchemaError("f.h5: missing dataset /u"),
        ConfigError("nx must be > 0"),
        GenerationError("too many rejected"),
        DataError("f.h5: non-finite values"),
        DivergenceError("non-finite loss"),
    ],
)
def test_user_errors_are_one_line_exit_2(monkeypatch, capsys, exc):
    code, err = _run(monkeypatch, capsys, exc)
    assert code == 2
    assert err.strip() == f"error: {exc}"


def test_a_user_error_raised_by_an_instantiated_constructor_is_one_line(monkeypatch, capsys):
    exc = InstantiationException("Error in call to target 'X'")
    exc.__cause__ = UserError("strength of scaling must be >= 0, got -1")
    code, err = _run(monkeypatch, capsys, exc)
    assert code == 2 and err.strip() == "error: strength of scaling must be >= 0, got -1"


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("missing"), RuntimeError("shape mismatch")])
def test_bugs_keep_their_traceback(monkeypatch, capsys, exc):
    """A ValueError is not user input: UserError does not subclass it, and it must not become one line."""
    assert not isinstance(UserError("x"), ValueError)
    code, err = _run(monkeypatch, capsys, exc)
    assert code == 1
    assert type(exc).__name__ in err and "error: " not in err.splitlines()[-1]


@pytest.mark.parametrize(
    "config, override, message",
    [
        (
            "pretrain",
            "trainer.max_epochz=3",
            "error: unknown setting 'trainer.max_epochz' in trainer.max_epochz=3 (did you mean trainer.max_epochs",
        ),
        ("generate", "num_sample=3", "error: unknown setting 'num_sample' in num_sample=3 (did you mean num_samples?)"),
        ("eval", "regression.n_lables=3", "did you mean regression.n_labels"),
        ("pretrain", "seed=[1", "error: bad override: no viable alternative at input '[1'"),
        ("pretrain", "pde=kdv,ks", "error: bad override: Ambiguous value for argument 'pde=kdv,ks'"),
    ],
)
def test_misspelt_or_malformed_overrides_are_one_line(capsys, config, override, message):
    with pytest.raises(SystemExit) as info:
        check_overrides(config, [override])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_valid_overrides_pass_the_check():
    check_overrides("pretrain", ["trainer.max_epochs=3", "+extra=1", "experiment=ks_vicreg", "seed=4"])
    check_overrides("pretrain", ["-m", "seed=0,1,2"])  # sweeps are Hydra's
