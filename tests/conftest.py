"""Shared pytest configuration: small thread counts so two xdist workers share 2 cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENMM_CPU_THREADS", "1")

import torch

torch.set_num_threads(1)
