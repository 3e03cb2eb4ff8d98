"""``evaluate_remote``: a server draws, this process scores; the table matches the one drawn in process."""

import pytest

from gendebias.clients import Client
from gendebias.errors import InvalidArgumentError
from gendebias.evaluation import evaluate, evaluate_remote, load_extractor, load_reference
from gendebias.generators import load_generator
from gendebias.generators.zoo.models import digits_class_probabilities
from gendebias.service.testing import running_server

N = 24
METHODS = ["naive", "polarity:-1", "balanced"]
SCORED = ("precision", "recall", "density", "coverage", "kl", "tv", "fairness")


@pytest.fixture(scope="module")
def tables():
    generator = load_generator("digits-vae")
    reference = load_reference("digits", generator, load_extractor("digits"))
    classifier = digits_class_probabilities()
    local = evaluate(generator, METHODS, n=N, replicates=2, reference=reference, classifier=classifier,
                     log_volumes=False).table
    with running_server() as address, Client(address) as client:
        remote = evaluate_remote(client, "digits-vae", METHODS, n=N, replicates=2, reference=reference,
                                 classifier=classifier).table
    return local, remote


def test_a_remote_table_has_the_numbers_of_the_same_draws_in_process(tables):
    local, remote = tables
    for method in METHODS:
        mine, theirs = local.row(method), remote.row(method)
        for key in SCORED:
            assert getattr(theirs, key).values == pytest.approx(getattr(mine, key).values, rel=1e-12), (method, key)
        assert theirs.fid.values == pytest.approx(mine.fid.values, rel=1e-6)  # sums in another row order
        assert theirs.ess.values == pytest.approx(mine.ess.values, rel=1e-12)
        assert theirs.distinct.values == mine.distinct.values
        assert theirs.evaluations.values == mine.evaluations.values
        assert theirs.log_volume_mean is None
    assert remote.row("naive").ess.values == (N, N)


def test_methods_a_server_cannot_draw_are_refused_before_any_call():
    class Unreachable:
        def resample(self, *args, **kwargs):
            raise AssertionError("no call expected")

    for method in ("truncation:0.7", "magnet-uniform"):
        with pytest.raises(InvalidArgumentError, match="cannot be drawn by a server"):
            evaluate_remote(Unreachable(), "digits-vae", ["naive", method], n=N)
