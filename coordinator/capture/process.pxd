# C declarations for coordinator/capture/process.py when compiled (setup.py; pure Python mode).
# Sharder.feed calls the classifier per packet: a C call instead of a Python one.
from coordinator.capture.filesplit cimport fast_class
