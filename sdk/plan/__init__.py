"""Static memory planning: memory.py places every activation and scratch buffer in one arena;
scratch.py mirrors the C kernels' scratch sizes, inplace.py says which outputs may overlap
their inputs, schedule.py picks the node order that plans smallest."""
