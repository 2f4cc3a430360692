"""Int8 IR -> artifacts: c.py writes the C99 package, tflite.py the int8 .tflite, host.py
builds the C package on the host and calls it through ctypes (`run --backend c`)."""
