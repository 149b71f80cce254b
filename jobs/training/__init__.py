"""The training entry point that ships as a SageMaker job's source archive, and its metric-line contract."""
