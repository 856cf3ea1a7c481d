"""OME-Zarr reading and writing, image readers and metadata harvesting."""
