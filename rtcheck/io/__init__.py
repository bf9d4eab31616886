"""DICOM input: readers (:mod:`rtcheck.io.dicom`) and folder discovery (:mod:`rtcheck.io.discover`).

This package is the only place that imports pydicom.
"""
