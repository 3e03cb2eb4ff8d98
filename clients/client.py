"""``Client``: the blocking Python SDK of ``gendebias.v1.DebiasService`` (numpy in, numpy out; never torch).

    with Client("localhost:50051") as client:
        info = client.get_generator("digits-gan")
        volumes = client.log_volumes("digits-gan", latents).log_volumes      # (N,) float64
        drawn = client.resample("digits-gan", 1000, rho=1.0, seed=0)         # drawn.latents, drawn.ess, ...

Every failure raises a :class:`gendebias.errors.GendebiasError` subclass (never ``grpc.RpcError``); large latent
arrays are streamed in chunks of about 1 MiB and the streamed answers reassembled. Requests are retried on
``UNAVAILABLE`` only, which is safe because every RPC is side-effect free (see :mod:`gendebias.clients._channel`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import grpc

from gendebias.clients import _channel, _codec
from gendebias.clients._errors import translated_errors
from gendebias.clients.results import GeneratorInfo, LogVolumes, Resampled, ResampleProgress, Reweighted
from gendebias.v1 import debias_service_pb2 as pb
from gendebias.v1 import debias_service_pb2_grpc as pb_grpc


class Client:
    """A connection to a gendebias server.

    Args:
        target: server address, ``"host:port"``.
        token: bearer token, sent as ``authorization: Bearer <token>`` on every call, when the server needs one.
        timeout: deadline of every call in seconds (a late call raises ``DeadlineExceededError``).
        root_certificates: PEM root certificates: connect with TLS trusting them; None connects in plaintext.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, target: str, *, token: str | None = None, timeout: float = 60.0,
                 root_certificates: bytes | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = _channel.call_metadata(token)
        credentials = _channel.credentials(root_certificates)
        options = _channel.channel_options()
        self._channel = (grpc.insecure_channel(target, options=options) if credentials is None
                         else grpc.secure_channel(target, credentials, options=options))
        self._stub = pb_grpc.DebiasServiceStub(self._channel)

    def list_generators(self) -> list[GeneratorInfo]:
        """Every served generator, with what a call needs (latent shape, prior, dtype, ...)."""
        with translated_errors(self.target):
            response = self._stub.ListGenerators(pb.ListGeneratorsRequest(), **self._options())
        return [_codec.generator_info(info) for info in response.generators]

    def get_generator(self, generator_id: str) -> GeneratorInfo:
        """One generator's description; ``UnknownGeneratorError`` if the server has no such id."""
        request = _codec.generator_request(generator_id)
        with translated_errors(self.target):
            response = self._stub.GetGenerator(request, **self._options())
        return _codec.generator_info(response.generator)

    def log_volumes(self, generator_id: str, latents: Any, *, top_k: int | None = None,
                    singular_values: bool = False, tile_codes: bool = False, label: int | None = None,
                    method: str = "exact", precision: str = "fp32", power_iterations: int | None = None,
                    projection_dim: int | None = None, seed: int | None = None) -> LogVolumes:
        """Per-latent log-volumes ``1/2 log det(J^T J)`` of ``latents`` ``(N, *latent_shape)``.

        ``top_k`` keeps the ``k`` largest singular values; ``singular_values`` / ``tile_codes`` also return them;
        ``label`` picks the class of a conditional generator. ``method`` is ``"exact"``, ``"randomized"``
        (needs ``top_k``; ``power_iterations``) or ``"projection"`` (``projection_dim``), ``seed`` seeds the last
        two; ``precision`` (``"fp32"``, ``"tf32"``, ``"bf16"``) is that of the Jacobian-vector products. The result
        says what ran and carries each value's error estimate.
        """
        count, requests = _codec.log_volumes_requests(generator_id, latents, top_k=top_k,
                                                      singular_values=singular_values, tile_codes=tile_codes,
                                                      label=label, method=method, precision=precision,
                                                      power_iterations=power_iterations,
                                                      projection_dim=projection_dim, seed=seed)
        assembler = _codec.LogVolumesAssembler(count)
        with translated_errors(self.target):
            for response in self._stub.ComputeLogVolumes(requests, **self._options()):
                assembler.add(response)
        return assembler.result()

    def reweight(self, generator_id: str, latents: Any, *, rho: float = 1.0, target: str = "tilted",
                 top_k: int | None = None, label: int | None = None, log_proposal: Any | None = None) -> Reweighted:
        """Normalised log importance weights of ``latents`` for ``target`` (``"tilted"``, ``"uniform"`` or
        ``"balanced"``, which needs a generator with a classifier, e.g. ``digits-gan``).

        ``log_proposal`` ``(N,)`` is the log density the latents were drawn from; omit it for latents drawn from
        the generator's prior (tilted) or uniformly from the region (uniform). The result carries the ESS.
        """
        count, requests = _codec.reweight_requests(generator_id, latents, rho=rho, target=target, top_k=top_k,
                                                   label=label, log_proposal=log_proposal)
        assembler = _codec.ReweightAssembler(count)
        with translated_errors(self.target):
            for response in self._stub.Reweight(requests, **self._options()):
                assembler.add(response)
        return assembler.result()

    def resample(self, generator_id: str, n: int, *, rho: float = 1.0, target: str = "tilted",
                 proposals: int | None = None, oversampling: float | None = None, scheme: str = "multinomial",
                 sampler: str = "auto", seed: int | None = None, label: int | None = None, top_k: int | None = None,
                 return_outputs: bool = False, max_evaluations: int | None = None,
                 particles: int | None = None,
                 progress: Callable[[ResampleProgress], None] | None = None) -> Resampled:
        """``n`` debiased latents: the server weights a seeded pool of prior proposals and resamples it.

        ``proposals`` is the pool size (default ``ceil(n * oversampling)``, oversampling 10); ``scheme`` is
        ``"multinomial"``, ``"systematic"``, ``"without_replacement"`` or ``"rejection"``; ``sampler`` is
        ``"auto"`` (the server measures a pilot and runs SIR or SMC, and says why in ``choice``), ``"sir"``,
        ``"smc"`` or ``"mcmc"``. Same ``seed``, same latents. ``progress`` is called with each
        :class:`ResampleProgress` the server streams while it works (tempering level, evaluations, seconds). A result
        with ``warnings`` (stopped by a budget before the target, collapsed, few distinct latents) also raises a
        :class:`UserWarning` with them. ``return_outputs`` also returns the
        generator's outputs for the drawn latents. SMC/MCMC only: ``max_evaluations`` caps the log-volume
        evaluations (the result's ``stopped`` says if it hit the cap) and ``particles`` sets the SMC population or
        the number of MCMC chains.
        """
        request = _codec.resample_request(generator_id, n, rho=rho, target=target, proposals=proposals,
                                          oversampling=oversampling, scheme=scheme, sampler=sampler, seed=seed,
                                          label=label, top_k=top_k, return_outputs=return_outputs,
                                          max_evaluations=max_evaluations, particles=particles,
                                          stream_progress=progress is not None)
        assembler = _codec.ResampleAssembler(progress)
        with translated_errors(self.target):
            for response in self._stub.Resample(request, **self._options()):
                assembler.add(response)
        return assembler.result()

    def health(self) -> str:
        """The server's ``grpc.health.v1`` status: ``"SERVING"``, ``"NOT_SERVING"``, ..."""
        check, request = _channel.health_check(self._channel)
        with translated_errors(self.target):
            response = check(request, **self._options())
        return _channel.serving_status(response)

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _options(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "metadata": self._metadata}
