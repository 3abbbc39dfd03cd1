"""The image plugin: registers the ``image`` domain (glyph house model, aMUSEd via diffusers) through the hooks."""

from __future__ import annotations

from mdsample.hookspecs import hookimpl


@hookimpl
def register_domains(register):
    from mdsample.plugins.image.domain import ImageDomain

    register(ImageDomain())
