"""Model records: what was trained, how it was evaluated, who approved it, where it was promoted and where it
serves (`record`), kept in each environment's storage (`store`) and, on SageMaker, in the Model Registry
(`registry`); `lifecycle` registers, promotes and deploys them; `artifacts` hashes and copies model files."""
