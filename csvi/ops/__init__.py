"""Tensor operations beyond the elementwise ones on `csvi`: indexing with
enumerated values (`csvi.ops.indexing.Vindex`) and log-space contractions
(`csvi.ops.contract`), at Pyro's paths."""
