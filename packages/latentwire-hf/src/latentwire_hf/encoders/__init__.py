"""The interlingua encoders that need ``transformers``, one module per kind: :mod:`.lm_pool` (``lm_pool``,
trainable layers of a pretrained LM pooled at a ratio). The torch-only kinds are in
:mod:`latentwire_core.encoders`; each kind's traits and options table are declared in
:mod:`latentwire_hf.config` (``lm_pool``) and :mod:`latentwire_core.config`.
"""
