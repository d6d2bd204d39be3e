"""Media beyond what Pillow decodes by itself: HEIF/HEIC (pillow-heif), camera RAW (rawpy),
video frames (PyAV), and the photo metadata (EXIF) that becomes a record's `fields`.

Each optional library is imported only when a file needs it; a missing one is a
`MissingExtra` naming the `pip install 'lookalike[...]'` to run."""
