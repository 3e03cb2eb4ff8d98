"""The bearer token from every source but the command line's value: ``GENDEBIAS_TOKEN``, a ``token_file`` (config key,
``GENDEBIAS_TOKEN_FILE`` or ``--token-file``), read once and stripped, resolved flag > env > file > default."""

import grpc
import pytest

from gendebias.errors import InvalidArgumentError
from gendebias.service.config import resolve_config
from gendebias.service.testing import running_server_state
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc


@pytest.fixture
def secrets(tmp_path):
    (tmp_path / "flag.txt").write_text("from-flag-file\n")
    (tmp_path / "env.txt").write_text("  from-env-file  \n")
    (tmp_path / "conf.txt").write_text("from-config-file")
    config = tmp_path / "server.toml"
    config.write_text('[server]\ntoken_file = "conf.txt"\n')
    return tmp_path, config


def test_the_token_comes_from_the_environment():
    assert resolve_config(env={"GENDEBIAS_TOKEN": "from-env"}).token == "from-env"
    assert resolve_config(env={}).token is None


def test_a_token_file_is_read_once_and_stripped_from_each_source(secrets):
    folder, config = secrets
    assert resolve_config(file=config, env={}).token == "from-config-file"  # relative to the config file
    assert resolve_config(env={"GENDEBIAS_TOKEN_FILE": str(folder / "env.txt")}).token == "from-env-file"
    assert resolve_config(flags={"token_file": str(folder / "flag.txt")}, env={}).token == "from-flag-file"


def test_token_sources_follow_flag_env_file_default(secrets):
    folder, config = secrets
    env_file = {"GENDEBIAS_TOKEN_FILE": str(folder / "env.txt")}
    assert resolve_config(file=config, env=env_file).token == "from-env-file"
    assert resolve_config(file=config, env={"GENDEBIAS_TOKEN": "from-env"}).token == "from-env"
    assert resolve_config(file=config, env=env_file, flags={"token": "from-flag"}).token == "from-flag"
    flags = {"token_file": str(folder / "flag.txt")}
    assert resolve_config(file=config, env={"GENDEBIAS_TOKEN": "from-env"}, flags=flags).token == "from-flag-file"


def test_bad_token_files_stop_the_server_at_start_without_showing_the_token(tmp_path):
    with pytest.raises(InvalidArgumentError, match="token_file"):
        resolve_config(flags={"token_file": str(tmp_path / "missing.txt")}, env={})
    (tmp_path / "empty.txt").write_text(" \n")
    with pytest.raises(InvalidArgumentError, match="empty"):
        resolve_config(flags={"token_file": str(tmp_path / "empty.txt")}, env={})
    (tmp_path / "t.txt").write_text("hidden-value")
    with pytest.raises(InvalidArgumentError, match="not both") as caught:
        resolve_config(env={"GENDEBIAS_TOKEN": "a", "GENDEBIAS_TOKEN_FILE": str(tmp_path / "t.txt")})
    assert "hidden-value" not in str(caught.value)


def test_a_server_with_a_token_file_requires_that_token(tmp_path):
    (tmp_path / "token").write_text("file-secret\n")
    config = resolve_config(flags={"token_file": str(tmp_path / "token")}, env={})
    with running_server_state(config) as (target, _), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.DebiasServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ListGenerators(pb.ListGeneratorsRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        listed = stub.ListGenerators(pb.ListGeneratorsRequest(), metadata=[("authorization", "Bearer file-secret")],
                                     timeout=10)
        assert len(listed.generators) == 5
