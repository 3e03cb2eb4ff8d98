"""The built-in digits zoo: small generators trained on scikit-learn's bundled 8x8 digits, with committed weights.

``data`` loads the images, ``models`` holds the architectures (``DigitsGAN``, ``DigitsDecoder``, ``DigitsClassifier``)
and loads the committed weights from ``weights/`` (verified by ``weights/SHA256SUMS``), ``evaluation`` measures the
class balance of generated samples, ``grid`` writes sample grids as PNG, and ``train`` reproduces the weights:
``python -m gendebias.generators.zoo.train``. ``MODEL_CARD.md`` records how they were trained and what they measure.
"""
