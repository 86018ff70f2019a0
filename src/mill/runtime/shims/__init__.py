"""Stand-ins for the ``azureml`` modules scoring scripts import from Azure's inference server.

The replica appends this folder to the END of ``sys.path`` before it loads a code
deployment's script, so ``from azureml.contrib.services.aml_request import rawhttp`` works in
an environment without those packages while an installed one still wins. The ``azureml``
packages here extend their ``__path__`` (pkgutil style) so they never hide an installed
``azureml`` namespace (``azureml.core``, ``azureml.ai.monitoring``, ...).
"""
