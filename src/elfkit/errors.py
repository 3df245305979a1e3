"""Errors a user can fix. The CLI prints their one-line message and exits with status 2."""


class ElfkitError(Exception):
    """Base class for every error caused by input the user controls."""


class StructureError(ElfkitError):
    """A structure file is missing, unreadable or physically invalid."""


class FieldFormatError(ElfkitError):
    """A volumetric file is missing, malformed or of an unknown format."""


class GridError(ElfkitError):
    """A grid is invalid, too large for memory, or does not match another grid."""


class SymmetryError(ElfkitError):
    """A symmetry operation cannot be applied to the requested grid."""


class OutputError(ElfkitError):
    """An output path cannot be written: its folder is missing, a folder or file is in the way,
    permission is denied, or the name is too long."""
