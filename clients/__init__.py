"""Python SDK: Client and AsyncClient (numpy in, numpy out; never torch)."""

from gendebias.clients._codec import SAMPLERS, SCHEMES, TARGETS
from gendebias.clients.async_client import AsyncClient
from gendebias.clients.client import Client
from gendebias.clients.results import GeneratorInfo, LogVolumes, Resampled, ResampleProgress, Reweighted

__all__ = [
    "SAMPLERS",
    "SCHEMES",
    "TARGETS",
    "AsyncClient",
    "Client",
    "GeneratorInfo",
    "LogVolumes",
    "ResampleProgress",
    "Resampled",
    "Reweighted",
]
