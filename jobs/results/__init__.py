"""`ftops jobs results`: the loss curve as CSV and PNG, overfitting, the best checkpoint, spot savings."""
