"""Batch debiasing over files: sharded, resumable, on one machine or a Ray cluster (thin layer over geometry)."""

from gendebias.jobs.run import run_resample, run_volumes

__all__ = ["run_resample", "run_volumes"]
