"""The interlingua encoders, one module per kind: token features ``(B, T, d_f)`` -> soft tokens
``Z (B, M, d_z)``.

* :mod:`.perceiver` (``perceiver``): learned queries cross-attend over the features; fixed M.
* :mod:`.chunk_mean` (``chunk_mean``, once ``mean_pool``): features averaged in M contiguous chunks, then projected.
* ``lm_pool`` lives in ``latentwire_hf.encoders.lm_pool`` (trainable layers of a pretrained LM).

Each module registers its class (``@INTERLINGUAS.register("<kind>")``); what a config check needs to
know of a kind without building it (fixed M, its own options table, a parameter estimate) is its
:class:`~latentwire_core.config.EncoderKind` in :data:`~latentwire_core.config.ENCODER_KINDS`.
Nothing here is imported until a kind is built (``INTERLINGUAS.get``).
"""
