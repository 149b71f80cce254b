"""ftops: fine-tuning as a platform on AWS SageMaker and Azure OpenAI."""

__version__ = "0.1.0"
