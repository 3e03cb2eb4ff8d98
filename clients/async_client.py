"""``AsyncClient``: the ``asyncio`` SDK (``grpc.aio``), with the same methods as :class:`~gendebias.clients.Client`.

    async with AsyncClient("localhost:50051") as client:
        drawn = await client.resample("digits-gan", 1000, seed=0)

Create it inside the running event loop (``grpc.aio`` channels belong to the loop that made them). Requests and
results are built by the same code as the blocking client (:mod:`gendebias.clients._codec`), errors are mapped
the same way, and the same retry policy applies (``UNAVAILABLE`` only; every RPC is side-effect free).
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


class AsyncClient:
    """An asyncio connection to a gendebias server; arguments as :class:`~gendebias.clients.Client`."""

    def __init__(self, target: str, *, token: str | None = None, timeout: float = 60.0,
                 root_certificates: bytes | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self._metadata = _channel.call_metadata(token)
        credentials = _channel.credentials(root_certificates)
        options = _channel.channel_options()
        self._channel = (grpc.aio.insecure_channel(target, options=options) if credentials is None
                         else grpc.aio.secure_channel(target, credentials, options=options))
        self._stub = pb_grpc.DebiasServiceStub(self._channel)

    async def list_generators(self) -> list[GeneratorInfo]:
        """Every served generator, with what a call needs (latent shape, prior, dtype, ...)."""
        with translated_errors(self.target):
            response = await self._stub.ListGenerators(pb.ListGeneratorsRequest(), **self._options())
        return [_codec.generator_info(info) for info in response.generators]

    async def get_generator(self, generator_id: str) -> GeneratorInfo:
        """One generator's description; ``UnknownGeneratorError`` if the server has no such id."""
        request = _codec.generator_request(generator_id)
        with translated_errors(self.target):
            response = await self._stub.GetGenerator(request, **self._options())
        return _codec.generator_info(response.generator)

    async def log_volumes(self, generator_id: str, latents: Any, *, top_k: int | None = None,
                          singular_values: bool = False, tile_codes: bool = False,
                          label: int | None = None, method: str = "exact", precision: str = "fp32",
                          power_iterations: int | None = None, projection_dim: int | None = None,
                          seed: int | None = None) -> LogVolumes:
        """Per-latent log-volumes; see :meth:`gendebias.clients.Client.log_volumes`."""
        count, requests = _codec.log_volumes_requests(generator_id, latents, top_k=top_k,
                                                      singular_values=singular_values, tile_codes=tile_codes,
                                                      label=label, method=method, precision=precision,
                                                      power_iterations=power_iterations,
                                                      projection_dim=projection_dim, seed=seed)
        assembler = _codec.LogVolumesAssembler(count)
        with translated_errors(self.target):
            async for response in self._stub.ComputeLogVolumes(requests, **self._options()):
                assembler.add(response)
        return assembler.result()

    async def reweight(self, generator_id: str, latents: Any, *, rho: float = 1.0, target: str = "tilted",
                       top_k: int | None = None, label: int | None = None,
                       log_proposal: Any | None = None) -> Reweighted:
        """Normalised log importance weights; see :meth:`gendebias.clients.Client.reweight`."""
        count, requests = _codec.reweight_requests(generator_id, latents, rho=rho, target=target, top_k=top_k,
                                                   label=label, log_proposal=log_proposal)
        assembler = _codec.ReweightAssembler(count)
        with translated_errors(self.target):
            async for response in self._stub.Reweight(requests, **self._options()):
                assembler.add(response)
        return assembler.result()

    async def resample(self, generator_id: str, n: int, *, rho: float = 1.0, target: str = "tilted",
                       proposals: int | None = None, oversampling: float | None = None,
                       scheme: str = "multinomial", sampler: str = "auto", seed: int | None = None,
                       label: int | None = None, top_k: int | None = None,
                       return_outputs: bool = False, max_evaluations: int | None = None,
                       particles: int | None = None,
                       progress: Callable[[ResampleProgress], None] | None = None) -> Resampled:
        """``n`` debiased latents; see :meth:`gendebias.clients.Client.resample`."""
        request = _codec.resample_request(generator_id, n, rho=rho, target=target, proposals=proposals,
                                          oversampling=oversampling, scheme=scheme, sampler=sampler, seed=seed,
                                          label=label, top_k=top_k, return_outputs=return_outputs,
                                          max_evaluations=max_evaluations, particles=particles,
                                          stream_progress=progress is not None)
        assembler = _codec.ResampleAssembler(progress)
        with translated_errors(self.target):
            async for response in self._stub.Resample(request, **self._options()):
                assembler.add(response)
        return assembler.result()

    async def health(self) -> str:
        """The server's ``grpc.health.v1`` status: ``"SERVING"``, ``"NOT_SERVING"``, ..."""
        check, request = _channel.health_check(self._channel)
        with translated_errors(self.target):
            response = await check(request, **self._options())
        return _channel.serving_status(response)

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    def _options(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "metadata": self._metadata}
