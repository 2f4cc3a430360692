"""Post-training int8 quantization: float IR -> int8 IR (see quantize.py for the steps)."""
from edgeforge.quantize.calibrate import DEFAULT_OBSERVER, OBSERVERS, calibrate, load_calib
from edgeforge.quantize.quantize import prepare_float, quantize_model, sqnr_db, sqnr_report

__all__ = ["DEFAULT_OBSERVER", "OBSERVERS", "calibrate", "load_calib", "prepare_float",
           "quantize_model", "sqnr_db", "sqnr_report"]
