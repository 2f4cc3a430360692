"""The device agent: agent.py (one stand-alone file copied to a Linux board) and
native_main.c (its harness for the C package). Nothing here imports the edgeforge tree."""
