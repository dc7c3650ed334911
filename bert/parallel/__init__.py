"""Data-parallel training over MPI, above the math of ``bert.core``: which rank computes what,
the fixed-order sum of the micro-batches, and the job's set-up."""
