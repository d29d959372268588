"""Media as the core of every surface: the content-addressed artifact store (artifacts.py: images,
audio and text enter a session as ids like image_1, and tools, backends, memory and the agent pass
ids, never paths) and the one set of image limits and checks (images.py: bytes from stat, pixels
from the header, before anything is read or decoded), and the one family of media errors
(errors.py: MediaError, which ImageDecodeError, ArtifactError and UnsupportedMediaError derive from).

May import: the standard library, PIL, pydantic, `mmagent.errors`, `mmagent.atomic`. Nothing else.
"""
