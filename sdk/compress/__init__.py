"""Compression of a float graph before quantization: magnitude and channel pruning
(prune.py) and layer-wise distillation that refits the pruned layers (distill.py); and
weight clustering of the int8 graph after quantizing (cluster.py, compile --cluster).

This stage sits above quantize: it calibrates with quantize.calibrate, measures with
quantize.sqnr_db and shares quantize.lstsq's least squares with bias correction.
"""
