"""Batch debiasing over files: sharded, resumable, on one machine or a Ray cluster (thin layer over geometry)."""

from gendebias._extras import require_extra

require_extra("gendebias.jobs", "jobs")  # before any import that needs the extra

from gendebias.jobs.run import run_resample, run_volumes

__all__ = ["run_resample", "run_volumes"]
