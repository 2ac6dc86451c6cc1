"""Find the image in a FITS file and read its header (not its data)."""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits


class NotAnImage(ValueError):
    """The file is not FITS, or holds no image with at least two axes (a usage error)."""


def image_hdu_index(hdul: fits.HDUList) -> int:
    """The first HDU holding an image of two or more axes (radio images often have 4: RA, Dec,
    frequency, Stokes); the primary HDU of an MEF file may be empty."""
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and hdu.header.get("NAXIS", 0) >= 2:
            return index
    raise NotAnImage("the FITS file holds no image with two or more axes")


def read_image_header(path: Path) -> tuple[int, fits.Header]:
    """(HDU index, header) of the image in path. Raises NotAnImage."""
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            index = image_hdu_index(hdul)
            return index, hdul[index].header.copy()
    except NotAnImage:
        raise
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise NotAnImage(f"the input is not a readable FITS file ({exc})") from exc
