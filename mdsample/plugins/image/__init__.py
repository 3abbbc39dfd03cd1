"""The image plugin: registers the ``image`` domain (glyph house model, aMUSEd via diffusers) through the hooks."""

from __future__ import annotations

from mdsample.describe import DomainInfo
from mdsample.hookspecs import hookimpl
from mdsample.plugins.image import options


@hookimpl
def register_domains(register):
    register(DomainInfo("image", options.DESCRIPTION, "mdsample.plugins.image.domain:ImageDomain",
                        options.ImageOptions, options.DEFAULTS, options.TASKS))
